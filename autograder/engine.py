"""One submission in, one graded result out: the kit's single grading path.

``GradingJob`` holds everything grading needs (settings, the lab's given code,
the prepared data) as plain values, so the same ``grade_notebook`` call runs
in nbgrader's autograde process or on a Dask worker on another machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import sandbox
from .capture import PLOT_HISTORY
from .check_runner import PYTEST_ARGS, CheckRunnerFailed, check_env, runner_for
from .settings import Grading, Lab, Sandbox

KIT_ROOT = Path(__file__).resolve().parent.parent
RESULT_VERSION = 1
EVIDENCE_FILES = ("evidence.json", "model.weights.h5")  # what the sandbox hands back (sandbox.RESULT_FILES)


@dataclass
class GradingJob:
    """What every submission of one assignment is graded with."""

    lab: dict
    grading: dict
    sandbox: dict
    given_code: str
    spam_data_py: bytes
    public_splits: bytes
    hidden_test: bytes
    extra_env: dict = field(default_factory=dict)

    @property
    def digest(self) -> str:
        h = hashlib.sha256(json.dumps([RESULT_VERSION, self.lab, self.grading, self.sandbox,
                                       self.given_code, self.extra_env], sort_keys=True).encode())
        h.update(kit_code_digest())
        for blob in (self.spam_data_py, self.public_splits, self.hidden_test):
            h.update(hashlib.sha256(blob).digest())
        return h.hexdigest()


# Kit modules that do not change how a submission is graded (batch driver, exports, report).
NOT_GRADING_CODE = {"__main__.py", "batch.py", "calibrate.py", "cli.py", "examples.py", "exports.py", "intake.py",
                    "report.py", "canvas_upload.py", "csvcells.py", "dblock.py", "lms_export.py", "lms_ids.py"}


@functools.lru_cache(maxsize=None)
def kit_code_digest() -> bytes:
    """The kit's grading code, hashed once per process (the code this process runs)."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        if path.name not in NOT_GRADING_CODE or path.parent != Path(__file__).parent:
            h.update(path.relative_to(Path(__file__).parent).as_posix().encode() + b"\0" + path.read_bytes())
    return h.digest()


def given_code(source_notebook: Path) -> str:
    """The lab's given code: the locked code cells before the first exercise."""
    nb = nbformat.read(source_notebook, as_version=4)
    parts = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            break
        if cell.cell_type == "code":
            parts.append(f"# --- cell {meta.get('grade_id', '?')}\n{cell.source}")
    return "\n\n".join(parts) + "\n"


def make_job(config, course_root: Path) -> GradingJob:
    """Build the job from course_config.py: settings, given code, data splits."""
    lab = Lab(config=config)
    lab_dir = course_root / "source" / lab.assignment
    sys.path.insert(0, str(lab_dir))
    import spam_data

    splits = spam_data.load_splits(lab.dataset, lab.data_dir or None, lab.split_seed)
    with tempfile.TemporaryDirectory() as tmp:
        public = spam_data.write_splits_file(splits, Path(tmp) / "public.tsv").read_bytes()
        hidden = spam_data.write_splits_file(splits, Path(tmp) / "test.tsv", names=("test",)).read_bytes()
    return GradingJob(
        lab=_traits(lab), grading=_traits(Grading(config=config)), sandbox=_traits(Sandbox(config=config)),
        given_code=given_code(lab_dir / f"{lab.notebook}.ipynb"),
        spam_data_py=(lab_dir / "spam_data.py").read_bytes(),
        public_splits=public, hidden_test=hidden,
    )


def _traits(configurable) -> dict:
    return {name: getattr(configurable, name) for name in configurable.trait_names(config=True)}


def submission_digest(nb: nbformat.NotebookNode, files: dict[str, bytes]) -> str:
    """Identifies the submission itself: cell sources and the student's files."""
    h = hashlib.sha256()
    for cell in nb.cells:
        h.update(f"{cell.cell_type}\0{cell.source}\0".encode())
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def submission_key(nb: nbformat.NotebookNode, files: dict[str, bytes], job: GradingJob) -> str:
    """Identifies what will run: the submission and the job."""
    return hashlib.sha256(f"{job.digest}\0{submission_digest(nb, files)}".encode()).hexdigest()


def _grader_dir(job: GradingJob) -> Path:
    """Per-process folder with the job's files, written once per job."""
    root = Path(tempfile.gettempdir()) / f"spamkit-job-{os.getuid()}-{job.digest[:16]}"
    if not (root / "ready").exists():
        root.mkdir(parents=True, exist_ok=True)
        (root / "lab").mkdir(exist_ok=True)
        (root / "lab" / "spam_data.py").write_bytes(job.spam_data_py)
        (root / "public.tsv").write_bytes(job.public_splits)
        (root / "test.tsv").write_bytes(job.hidden_test)
        (root / "given_code.py").write_text(job.given_code, encoding="utf-8")
        (root / "ready").touch()
    return root


def grade_notebook(nb_json: str, files: dict[str, bytes], job: GradingJob, notebook_name: str) -> dict:
    """Run a sanitized submission in the sandbox, then the hidden checks on its evidence."""
    started = time.monotonic()
    grader = _grader_dir(job)
    with tempfile.TemporaryDirectory(prefix="spamkit-") as tmp:
        scratch = Path(tmp) / "work"
        scratch.mkdir()
        for name, data in files.items():
            target = scratch / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (scratch / "spam_data.py").write_bytes(job.spam_data_py)
        notebook = scratch / f"{notebook_name}.ipynb"
        notebook.write_text(nb_json, encoding="utf-8")
        env = {"SPAM_LAB_SEED": job.lab["seed"], "SPAM_LAB_DATASET": job.lab["dataset"], **job.extra_env}
        outcome = sandbox.run_notebook(notebook, scratch, grader / "public.tsv", Sandbox(**job.sandbox), env)
        executed = _read_executed(scratch / "executed.ipynb", job)
        check_started = time.monotonic()
        checks = run_checks(scratch, job, outcome.status)
        return {
            "version": RESULT_VERSION,
            **asdict(outcome),
            "execute_seconds": outcome.seconds,
            "check_seconds": round(time.monotonic() - check_started, 2),
            "seconds": round(time.monotonic() - started, 2),
            "executed": executed,
            "checks": checks,
            "evidence": kept_evidence(scratch / "evidence"),
        }


def kept_evidence(folder: Path) -> dict[str, bytes]:
    """The evidence files the sandbox handed back, kept so a check can be run again later."""
    kept = {}
    for name in EVIDENCE_FILES:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            kept[name] = path.read_bytes()
    return kept


def recheck(result: dict, evidence: dict[str, bytes], job: GradingJob, check_id: str) -> dict:
    """``result`` with one check run again on its kept evidence under this job's checks and settings."""
    with tempfile.TemporaryDirectory(prefix="spamkit-") as tmp:
        scratch = Path(tmp)
        (scratch / "evidence").mkdir()
        for name, data in evidence.items():
            (scratch / "evidence" / name).write_bytes(data)
        fresh = run_checks(scratch, job, result["status"], only=check_id)
    if not fresh:
        raise ValueError(f"there is no check {check_id!r}")
    checks = [c for c in result["checks"] if c["id"] != check_id]
    checks.insert(next((i for i, c in enumerate(result["checks"]) if c["id"] == check_id), len(checks)), fresh[0])
    return {**result, "checks": checks, "evidence": evidence,
            "rechecked": [*result.get("rechecked", []), {"check": check_id, "job": job.digest[:16]}]}


def _read_executed(path: Path, job: GradingJob) -> str | None:
    """The executed notebook as validated JSON text, or None."""
    if not path.is_file() or path.is_symlink():
        return None
    try:
        nb = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception:  # noqa: BLE001 - a notebook we cannot read is reported as missing
        return None
    return nbformat.writes(nb)


def job_context(job: GradingJob) -> dict:
    """Where the check process finds the job's given code and data (written once by ``_grader_dir``)."""
    grader = _grader_dir(job)
    return {
        "given_code": str(grader / "given_code.py"),
        "public_splits": str(grader / "public.tsv"),
        "hidden_test": str(grader / "test.tsv"),
        "lab_dir": str(grader / "lab"),
        "seed": job.lab["seed"],
        "dataset": job.lab["dataset"],
    }


def run_checks(scratch: Path, job: GradingJob, run_status: str, only: str | None = None) -> list[dict]:
    """Run the hidden checks (or only the check named ``only``) on ``scratch/evidence``.

    They run in this process's warm check runner, else in a fresh pytest.
    """
    context = {
        "evidence_dir": str(scratch / "evidence"),
        "plot_history": PLOT_HISTORY,
        "run_status": run_status,
        "only": only,
        **job.grading,
    }
    context_file = scratch / "check_context.json"
    results_file = scratch / "check_results.json"
    context_file.write_text(json.dumps(context), encoding="utf-8")
    runner = runner_for(job.digest, job_context(job), job.sandbox["cpu_threads"])
    try:
        runner.run(context_file, results_file, scratch, timeout=job.sandbox["cell_timeout"])
    except CheckRunnerFailed as exc:
        # the checks that need no figures still count; the AUC checks report a grader error
        context["regraded"] = {"error": "CheckRunnerFailed", "message": str(exc)}
        context_file.write_text(json.dumps(context), encoding="utf-8")
        results_file.unlink(missing_ok=True)
        env = {**check_env(job.sandbox["cpu_threads"]),
               "KIT_CHECK_CONTEXT": str(context_file), "KIT_CHECK_RESULTS": str(results_file)}
        proc = subprocess.run([sys.executable, "-m", "pytest", *PYTEST_ARGS], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=job.sandbox["cell_timeout"])
        if not results_file.is_file():
            raise RuntimeError(f"the hidden checks did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if not results_file.is_file():
        raise RuntimeError("the hidden checks did not run (no results from the check process)")
    return json.loads(results_file.read_text(encoding="utf-8"))
