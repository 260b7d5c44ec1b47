"""Grading on a cluster the course does not run: a scheduler's address, or a cluster object of any engine.

The kit hard-codes no engine. ``Batch.scheduler_address`` (``--scheduler``)
joins a running ``dask scheduler``; ``Batch.cluster`` names a callable
(``module.function``, looked up in the course root first) that returns a
Dask cluster object, e.g. dask-jobqueue's ``SLURMCluster`` or
dask-kubernetes' ``KubeCluster`` already scaled, which the batch closes when
it ends. Either way the workers are machines the client never sees, so every
one is vetted before it is given a notebook (``grading/worker_check.py``):
the batch's tasks need a resource that only workers running the client's
grading code, able to make the sandbox, advertise.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
from pathlib import Path

from ..errors import BatchError
from ..grading.worker_check import GradingGate, gate_report, gate_resource, identity, inspect_worker

WORKER_WAIT = 300  # seconds a batch waits for its first worker (a job queue may take minutes to start one)
VETTING = 60  # seconds a batch waits for the workers present to finish their check before it starts


def cluster_factory(dotted: str, course_root: Path):
    """The callable ``Batch.cluster`` names; a module next to course_config.py is found first."""
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise BatchError(f"Batch.cluster = {dotted!r} is not an import path (module.function)")
    sys.path.insert(0, str(course_root))
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise BatchError(f"Batch.cluster = {dotted!r} cannot be imported: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.remove(str(course_root))
    return factory


def external_client(stack: contextlib.ExitStack, address: str, cluster: str, course_root: Path):
    """A client of the scheduler at ``address``, else of the cluster ``cluster`` makes (closed by ``stack``)."""
    from distributed import Client

    if address:
        client = Client(address, set_as_default=False)
    else:
        made = cluster_factory(cluster, course_root)()
        stack.callback(made.close)
        client = Client(made, set_as_default=False)
    stack.callback(client.close)
    return client


def open_gate(client, job, wait: float = WORKER_WAIT, settle: float = VETTING) -> tuple[str, dict[str, dict]]:
    """Vet every worker for ``job`` (present ones now, later ones as they join); the resource the batch's tasks
    must ask for, and each worker's report (None: still being vetted). Raises BatchError when no worker may
    grade: every worker refused, or none joined within ``wait`` seconds."""
    resource = gate_resource(job.digest)
    with contextlib.suppress(Exception):  # a worker that cannot load the gate (no kit) stays unvetted
        client.register_plugin(GradingGate(resource, job.sandbox, identity()), name=resource)
    started = time.monotonic()
    while True:
        reports = worker_reports(client, resource)
        waited = time.monotonic() - started
        pending = [address for address, report in reports.items() if report is None]
        if any(report and not report["refused"] for report in reports.values()):
            if not pending or waited > settle:  # a worker still being vetted gets tasks once it passes
                return resource, reports
        elif reports and not pending or waited > wait:
            break
        time.sleep(0.5)
    refusals = "; ".join(f"{address}: {r['refused'] if r else 'not vetted'}" for address, r in reports.items())
    raise BatchError(f"no Dask worker may grade this batch, so nobody was graded ({refusals or 'no worker joined'})")


def worker_reports(client, resource: str) -> dict[str, dict | None]:
    """Each worker's report from the gate; None while it is being vetted (or when it cannot load the gate:
    no kit there)."""
    out = dict.fromkeys(client.scheduler_info(n_workers=-1)["workers"])  # a busy worker may miss the call
    for address, report in client.run(gate_report, resource, on_error="return").items():
        if isinstance(report, BaseException):
            report = {
                "refused": f"the worker check could not run there ({type(report).__name__}: {report}); "
                "is the kit installed?"
            }
        out[address] = report and {**report, "address": address}
    return out


def check_workers(client, job) -> dict[str, dict]:
    """``spamkit worker-check``: every worker's report for the course's job, without vetting it for a batch."""
    return {
        address: (
            {"refused": f"the worker check failed: {type(r).__name__}: {r}"} if isinstance(r, BaseException) else r
        )
        for address, r in client.run(inspect_worker, job.sandbox, identity(), job.digest, on_error="return").items()
    }
