"""One submission in, one graded result out: the kit's single grading path.

``grade_notebook`` runs a sanitized submission in the sandbox, then the
hidden checks on the evidence it left, and returns a ``GradingResult``. It
takes plain data (the notebook as JSON, the student's files, the
``GradingJob``), so the same call runs in nbgrader's autograde process or on
a Dask worker. Its two stages are functions of their own, ``run_in_sandbox``
(a ``SandboxRun``: how the run ended, the executed notebook, the evidence) and
``check_run`` (the checks on that evidence), so that a batch can run them as
two Dask tasks and check one submission while the next one's sandbox starts.
``recheck`` runs one check again on the evidence a result kept, without
running the notebook.

A run that ended early (a limit, a dead kernel: not OK, not a cell timeout)
leaves no final evidence, but may leave the guard's last checkpoint (what it
recorded after the student's cells that ran, ``evidence.CHECKPOINT_DIR``).
With ``Grading.partial_credit_on_crash`` on, the checks then run on that
checkpoint (``evidence_to_check``): the result is ``partial``, keeps the
checkpoint as its evidence, and each check whose part was not recorded
fails naming the stop.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .. import sandbox
from ..model import CheckResult, GradingResult, RunOutcome, Status
from ..settings import Sandbox
from . import check_process
from .evidence import (
    CHECKPOINT_DIR,
    EVIDENCE_DIR,
    EVIDENCE_FILE,
    EVIDENCE_FILES,
    PLOT_HISTORY,
    capture_settings,
    checkpoint_evidence,
    sandbox_files,
)
from .job import GradingJob, job_context, job_dir


@dataclass
class SandboxRun:
    """What a sandboxed run hands to the checks: its outcome, the executed notebook, the evidence files."""

    outcome: RunOutcome
    executed: str | None
    evidence: dict[str, bytes]
    seconds: float  # preparing, running and collecting
    checkpoint: dict[str, bytes] | None = None  # the guard's last checkpoint, if the sandbox brought one back


def grade_notebook(nb_json: str, files: dict[str, bytes], job: GradingJob, notebook_name: str) -> GradingResult:
    """Run a sanitized submission in the sandbox, then the hidden checks on its evidence."""
    return check_run(run_in_sandbox(nb_json, files, job, notebook_name), job)


def run_in_sandbox(nb_json: str, files: dict[str, bytes], job: GradingJob, notebook_name: str) -> SandboxRun:
    """The first stage: the notebook run in the sandbox, and what it left that the checks read."""
    started = time.monotonic()
    data = job_dir(job)
    with tempfile.TemporaryDirectory(prefix="spamkit-") as tmp:
        scratch = Path(tmp) / "work"
        scratch.mkdir()
        for name, content in files.items():
            target = scratch / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        (scratch / "spam_data.py").write_bytes(job.spam_data_py)
        notebook = scratch / f"{notebook_name}.ipynb"
        notebook.write_text(nb_json, encoding="utf-8")
        env = {"SPAM_LAB_SEED": job.lab["seed"], "SPAM_LAB_DATASET": job.lab["dataset"], **job.extra_env}
        outcome = sandbox.run_notebook(
            notebook, scratch, data / "public.tsv", Sandbox(**job.sandbox), env, capture_settings(), sandbox_files()
        )
        executed = _read_executed(scratch / sandbox.collect.EXECUTED)
        evidence = kept_evidence(scratch / EVIDENCE_DIR)
        checkpoint = kept_evidence(scratch / CHECKPOINT_DIR)
    return SandboxRun(outcome, executed, evidence, round(time.monotonic() - started, 2), checkpoint)


def check_run(run: SandboxRun, job: GradingJob) -> GradingResult:
    """The second stage: the hidden checks on a run's evidence, and the graded result."""
    started = time.monotonic()
    evidence, partial = evidence_to_check(run, job.grading.get("partial_credit_on_crash", True))
    with tempfile.TemporaryDirectory(prefix="spamkit-") as tmp:
        scratch = Path(tmp)
        (scratch / EVIDENCE_DIR).mkdir()
        for name, data in evidence.items():
            (scratch / EVIDENCE_DIR / name).write_bytes(data)
        checks = check_evidence(scratch, job, run.outcome.status, run_message=run.outcome.message, partial=partial)
    check_seconds = round(time.monotonic() - started, 2)
    return GradingResult.of_run(
        run.outcome,
        run.executed,
        checks,
        check_seconds=check_seconds,
        seconds=round(run.seconds + check_seconds, 2),
        evidence=evidence,
        partial=partial,
    )


# How a run may end and still be graded on its final evidence only: it ran to the end (a cell stopped at
# its time limit is interrupted, and the notebook goes on to the capture cell).
RAN_TO_THE_END = (Status.OK, Status.CELL_TIMEOUT)


def evidence_to_check(run: SandboxRun, partial_credit: bool) -> tuple[dict[str, bytes], bool]:
    """The evidence the checks read, and whether it is the checkpoint of a run that ended early.

    The final evidence whenever there is some, or the run ran to its end, or partial credit is off;
    else the guard's last checkpoint, if it is a valid one (``evidence.checkpoint_evidence``).
    """
    if EVIDENCE_FILE in run.evidence or run.outcome.status in RAN_TO_THE_END or not partial_credit:
        return run.evidence, False
    checkpoint = checkpoint_evidence(run.checkpoint or {})
    if checkpoint is None:
        return run.evidence, False
    return checkpoint, True


def warm_checks(job: GradingJob) -> bool:
    """Start this process's warm check process for the job now (a batch does it while the first notebooks run)."""
    check_process.warm_process(job.digest, job_context(job), Sandbox(**job.sandbox).threads).start()
    return True


def kept_evidence(folder: Path) -> dict[str, bytes]:
    """The evidence files the sandbox handed back, kept so a check can be run again later."""
    kept = {}
    for name in EVIDENCE_FILES:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            kept[name] = path.read_bytes()
    return kept


def recheck(result: GradingResult, evidence: dict[str, bytes], job: GradingJob, check_id: str) -> GradingResult:
    """``result`` with one check run again on its kept evidence under this job's checks and settings."""
    with tempfile.TemporaryDirectory(prefix="spamkit-") as tmp:
        scratch = Path(tmp)
        (scratch / EVIDENCE_DIR).mkdir()
        partial = result.partial and job.grading.get("partial_credit_on_crash", True)
        # partial credit is off in this job: a partial result is checked as if nothing was recorded (its checkpoint
        # is kept)
        checked = {} if result.partial and not partial else evidence
        for name, data in checked.items():
            (scratch / EVIDENCE_DIR / name).write_bytes(data)
        fresh = check_evidence(scratch, job, result.status, only=check_id, run_message=result.message, partial=partial)
    if not fresh:
        raise ValueError(f"there is no check {check_id!r}")
    return result.with_check(fresh[0], job.digest, evidence)


def _read_executed(path: Path) -> str | None:
    """The executed notebook as validated JSON text, or None."""
    if not path.is_file() or path.is_symlink():
        return None
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception:  # noqa: BLE001 - a notebook we cannot read is reported as missing
        return None
    return nbformat.writes(nb)


def check_context(
    scratch: Path,
    job: GradingJob,
    run_status: Status,
    only: str | None = None,
    run_message: str = "",
    partial: bool = False,
) -> dict:
    """What the hidden checks are told (the check process adds the grader's figures)."""
    return {
        "evidence_dir": str(scratch / EVIDENCE_DIR),
        "plot_history": PLOT_HISTORY,
        "run_status": str(run_status),
        "run_message": run_message,
        "partial": partial,  # the evidence is a checkpoint of a run that ended early (conftest names the stop)
        "only": only,
        **job.grading,
    }


def check_evidence(
    scratch: Path,
    job: GradingJob,
    run_status: Status,
    only: str | None = None,
    run_message: str = "",
    partial: bool = False,
) -> list[CheckResult]:
    """The hidden checks (or only the check named ``only``) on ``scratch``'s evidence: their records."""
    context = check_context(scratch, job, run_status, only, run_message, partial)
    records = check_process.check_in_child(
        context,
        scratch,
        job.digest,
        job_context(job),
        Sandbox(**job.sandbox).threads,
        timeout=job.sandbox["cell_timeout"],
    )
    return [CheckResult.from_dict(record) for record in records]
