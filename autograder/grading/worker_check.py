"""Whether a Dask worker may grade: the client's kit, and a sandbox it can make.

On a cluster the client never sees the machines its notebooks run on. A
worker with another version of the grading code would grade by other rules
under the same key, and one that cannot make the sandbox (no bubblewrap, no
cgroup rights, no seccomp filter) would fail every notebook it is handed, or
worse, with ``Sandbox.mode`` set otherwise on that machine, grade unisolated.
So before a batch, every worker reports what it is (``inspect_worker``), and
only workers that match the client advertise the Dask resource the batch's
tasks need (``GradingGate``): the scheduler never gives a task to any other
worker, also not to one that joins later (a worker plugin runs on every
worker, present and future) nor after a worker dies (its tasks go to the
remaining vetted ones).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import platform
import socket
import sys

from distributed.diagnostics.plugin import WorkerPlugin

from ..errors import SandboxUnavailable
from ..settings import Sandbox
from .job import grading_code_digest

DISTRIBUTION = "spam-transformer-kit"
_REPORTS: dict[str, dict] = {}  # gate name -> this worker's report (read back by ``gate_report``)


def kit_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def identity() -> dict:
    """What the client compares a worker with: the kit's version and its grading code."""
    return {"kit_version": kit_version(), "grading_code": grading_code_digest().hex()}


def inspect_worker(sandbox: dict, expected: dict, job_digest: str) -> dict:
    """This machine as a grader of the job: host, Python, kit, sandbox strategy, cgroups, and why it is refused
    ('' if it may grade). Starts a real sandbox once per process (``sandbox_here``)."""
    from ..sandbox import sandbox_here
    from ..sandbox.host import limit_cgroups

    settings = Sandbox(**sandbox)
    report = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "executable": sys.executable,
        **identity(),
        "job": job_digest,
        "sandbox": "",
        "cgroups": "",
        "refused": "",
    }
    problems = []
    if report["grading_code"] != expected["grading_code"]:
        problems.append(
            f"its kit differs from the client's (version {report['kit_version']} vs "
            f"{expected['kit_version']}, grading code {report['grading_code'][:12]} vs "
            f"{expected['grading_code'][:12]}): install the client's version"
        )
    try:
        report["sandbox"] = sandbox_here(settings)
        cgroup_host = limit_cgroups(settings)
        report["cgroups"] = cgroup_host.version if cgroup_host is not None else "off"
    except SandboxUnavailable as exc:
        problems.append(f"it cannot make the sandbox: {exc}")
    report["refused"] = "; ".join(problems)
    return report


class GradingGate(WorkerPlugin):
    """Vets each worker once; one that passes advertises ``resource`` (one unit per thread), which every task
    of the batch needs. A worker that fails gets nothing and keeps its report for the client."""

    def __init__(self, resource: str, sandbox: dict, expected: dict):
        self.resource, self.sandbox, self.expected = resource, sandbox, expected

    async def setup(self, worker) -> None:
        loop = asyncio.get_running_loop()
        try:  # the sandbox probe starts processes: not on the worker's event loop
            report = await loop.run_in_executor(
                None, inspect_worker, self.sandbox, self.expected, self.resource.removeprefix(RESOURCE_PREFIX)
            )
        except Exception as exc:  # noqa: BLE001 - a worker that cannot even be inspected must not grade
            report = {"refused": f"the worker check failed: {type(exc).__name__}: {exc}"}
        report["address"] = worker.address
        _REPORTS[self.resource] = report
        if not report["refused"]:
            await worker.set_resources(**{self.resource: worker.state.nthreads})


RESOURCE_PREFIX = "spamkit-job-"


def gate_resource(job_digest: str) -> str:
    """The Dask resource of the workers vetted for one job (its digest names the rules and the code)."""
    return f"{RESOURCE_PREFIX}{job_digest}"


def gate_report(resource: str, dask_worker=None) -> dict | None:
    """This worker's report from the gate of ``resource`` (run by ``Client.run``), None if it has none."""
    return _REPORTS.get(resource)
