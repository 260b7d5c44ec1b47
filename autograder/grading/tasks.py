"""The two Dask tasks a batch grades a submission with, and the worker each run was on.

Thin wrappers of ``engine.run_in_sandbox`` and ``engine.check_run`` that also
say which worker ran the notebook (the batch log records it), kept apart from
the batch module so that a worker imports only what grading needs.
"""

from __future__ import annotations

from ..model import GradingResult
from . import engine
from .job import GradingJob


def run(nb_json: str, files: dict[str, bytes], job: GradingJob, notebook_name: str) -> tuple[engine.SandboxRun, str]:
    """The sandboxed run, and the address of the worker it ran on."""
    from distributed import get_worker

    return engine.run_in_sandbox(nb_json, files, job, notebook_name), get_worker().address


def check(run_on: tuple[engine.SandboxRun, str], job: GradingJob) -> tuple[GradingResult, str]:
    """The checks on a run (what ``run`` returned: the run and its worker), and the worker that ran its notebook."""
    sandbox_run, worker = run_on
    return engine.check_run(sandbox_run, job), worker
