"""Dask distributed internals the kit relies on.

A local batch needs workers of two kinds in one ``LocalCluster``: sandbox
workers and check workers, each advertising its own Dask resource.
``LocalCluster`` gives every worker the same options and has no argument for
workers that differ; ``SpecCluster`` (its base) keeps the workers it runs in
its ``worker_spec`` dict and the template it scales with in ``new_spec``,
both set per instance in ``SpecCluster.__init__``. The kit copies the
template (with the options ``LocalCluster`` worked out: threads, memory
limit, logging), adds a resource to each copy and puts the copies into
``worker_spec``. The public way, a ``SpecCluster`` built from scratch, would
repeat ``LocalCluster``'s own choice of those options.
"""

from __future__ import annotations

FENCED = (
    # the template worker LocalCluster scales with (instance attribute, set in SpecCluster.__init__): copied
    # so each kind of worker keeps LocalCluster's options and only gains its resource
    "distributed.deploy.spec:SpecCluster.new_spec",
    # the workers the cluster runs (instance attribute, SpecCluster.__init__; documented in SpecCluster's
    # docstring as ``.worker_spec``): the kit adds workers of its own kinds, then scales to their number
    "distributed.deploy.spec:SpecCluster.worker_spec",
)


def add_workers_with_resources(cluster, kinds: dict[str, tuple[int, dict[str, float]]]) -> None:
    """Start, on a ``LocalCluster`` made with no workers, ``count`` workers named ``<kind>-<i>`` per kind,
    each with LocalCluster's worker options plus that kind's Dask ``resources``."""
    base = cluster.new_spec
    for kind, (count, resources) in kinds.items():
        spec = {**base, "options": {**base["options"], "resources": dict(resources)}}
        cluster.worker_spec.update({f"{kind}-{i}": spec for i in range(count)})
    cluster.scale(len(cluster.worker_spec))
