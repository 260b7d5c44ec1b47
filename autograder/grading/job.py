"""The GradingJob: everything every submission of one assignment is graded with, as plain values.

Settings, the lab's given code and the prepared data travel as data, so the
same job grades in nbgrader's autograde process or on a Dask worker on
another machine. Its ``digest`` names what decides a grade: the settings,
the given code, the data, and the code of the grading path itself
(``GRADING_CODE``: the grading and sandbox packages and the modules they
import), so that a stored result is never reused under other rules.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import json
import os
import shutil
import stat
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import nbformat

from ..model import RESULT_VERSION
from ..settings import Batch, Grading, Lab, Sandbox, local_workers, threads_per_sandbox

KIT_PACKAGE = Path(__file__).resolve().parent.parent
# The kit's code on the path from a submission to its grade (relative to the package): the packages that
# run, capture and check a notebook, and the modules they import.
GRADING_CODE = ("__init__.py", "errors.py", "model.py", "settings.py", "grading", "sandbox")


@functools.cache
def grading_code_digest() -> bytes:
    """The grading code, hashed once per process (the code this process runs)."""
    h = hashlib.sha256()
    for entry in GRADING_CODE:
        path = KIT_PACKAGE / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(file.relative_to(KIT_PACKAGE).as_posix().encode() + b"\0" + file.read_bytes())
    return h.digest()


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
    locked_code: list = field(default_factory=list)  # sources of the lab's locked code cells (same for all)

    @property
    def digest(self) -> str:
        h = hashlib.sha256(
            json.dumps(
                [
                    RESULT_VERSION,
                    self.lab,
                    self.grading,
                    self.sandbox,
                    self.given_code,
                    self.extra_env,
                    self.locked_code,
                ],
                sort_keys=True,
            ).encode()
        )
        h.update(grading_code_digest())
        for blob in (self.spam_data_py, self.public_splits, self.hidden_test):
            h.update(hashlib.sha256(blob).digest())
        return h.hexdigest()


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


def locked_code(source_notebook: Path) -> list[str]:
    """The sources of the lab's locked code cells (given code, self-checks): nbgrader restores them in every
    submission, so they are the instructor's code, never the student's."""
    nb = nbformat.read(source_notebook, as_version=4)
    return [
        cell.source for cell in nb.cells if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("locked")
    ]


_LOADERS: dict[Path, tuple[bytes, ModuleType]] = {}  # loader path -> (its source, the module made of it)
_LOADERS_LOCK = threading.Lock()


def lab_loader(lab_dir: Path) -> ModuleType:
    """The lab's data loader of one course, ``<lab_dir>/spam_data.py``, imported by its path.

    Each course folder gets a module of its own, under a name made from the file's path, never through
    ``sys.path``: a process that serves two courses (a formgrader, the tests) cannot hand one course the
    other's loader. Kept per path for the process, and imported again if the file's source changed.
    """
    path = (lab_dir / "spam_data.py").resolve()
    source = path.read_bytes()
    with _LOADERS_LOCK:
        cached = _LOADERS.get(path)
        if cached is not None and cached[0] == source:
            return cached[1]
        name = "_spamkit_lab_" + hashlib.sha256(source + b"\0" + str(path).encode()).hexdigest()[:16]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there while the loader runs
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        _LOADERS[path] = (source, module)
        return module


def make_job(config, course_root: Path, sandboxes_at_once: int | None = None) -> GradingJob:
    """Build the job from course_config.py: settings, given code, data splits.

    ``sandboxes_at_once`` (default: the local Dask workers the course configures, ``Batch.n_workers`` or
    one per core) fixes the CPU threads of each sandbox when ``Sandbox.cpu_threads`` is 0: the cores shared
    among them. The number is part of the job, so of every result's key: a batch on one worker (all cores
    per notebook) and one on every core (one each) are different jobs, and the same job always runs a
    notebook on the same number of threads.
    """
    lab = Lab(config=config)
    lab_dir = course_root / "source" / lab.assignment
    spam_data = lab_loader(lab_dir)
    splits = spam_data.load_splits(lab.dataset, lab.data_dir or None, lab.split_seed)
    with tempfile.TemporaryDirectory() as tmp:
        public = spam_data.write_splits_file(splits, Path(tmp) / "public.tsv").read_bytes()
        hidden = spam_data.write_splits_file(splits, Path(tmp) / "test.tsv", names=("test",)).read_bytes()
    sandbox = _traits(Sandbox(config=config))
    at_once = sandboxes_at_once or local_workers(Batch(config=config))
    sandbox["cpu_threads"] = threads_per_sandbox(sandbox["cpu_threads"], at_once)
    return GradingJob(
        lab=_traits(lab),
        grading=_traits(Grading(config=config)),
        sandbox=sandbox,
        given_code=given_code(lab_dir / f"{lab.notebook}.ipynb"),
        locked_code=locked_code(lab_dir / f"{lab.notebook}.ipynb"),
        spam_data_py=(lab_dir / "spam_data.py").read_bytes(),
        public_splits=public,
        hidden_test=hidden,
    )


def _traits(configurable) -> dict:
    return {name: getattr(configurable, name) for name in configurable.trait_names(config=True)}


_JOB_DIRS: dict[str, Path] = {}  # job digest -> the folder this process made for it
_JOB_DIRS_LOCK = threading.Lock()
os.register_at_fork(after_in_child=lambda: _JOB_DIRS.clear())  # a forked child makes its own


def job_dir(job: GradingJob) -> Path:
    """This process's private folder with the job's files (the hidden test split among them).

    Made by this process (``mkdtemp``: a random name, mode 0700) once per job, and checked before every
    use: never a folder found at a predictable path, which another local user could have made first with
    forged splits or given code. If it changed hands or mode, or is gone, it is made again.
    """
    digest = job.digest
    with _JOB_DIRS_LOCK:
        folder = _JOB_DIRS.get(digest)
        if folder is None or not _private(folder):
            folder = _JOB_DIRS[digest] = _write_job_dir(job, digest)
        return folder


def _private(folder: Path) -> bool:
    """A real directory (not a symlink) of this user that no one else may enter."""
    try:
        info = os.lstat(folder)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) == 0o700


def _write_job_dir(job: GradingJob, digest: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=f"spamkit-job-{digest[:16]}-"))
    (folder / "lab").mkdir()
    (folder / "lab" / "spam_data.py").write_bytes(job.spam_data_py)
    (folder / "public.tsv").write_bytes(job.public_splits)
    (folder / "test.tsv").write_bytes(job.hidden_test)
    (folder / "given_code.py").write_text(job.given_code, encoding="utf-8")
    return folder


def remove_job_dirs() -> None:
    """Remove the job folders this process made (a batch is over, or the process exits)."""
    with _JOB_DIRS_LOCK:
        for folder in _JOB_DIRS.values():
            if _private(folder):
                shutil.rmtree(folder, ignore_errors=True)
        _JOB_DIRS.clear()


atexit.register(remove_job_dirs)


def job_context(job: GradingJob) -> dict:
    """Where the check process finds the job's given code and data (``job_dir``), and its memory limit."""
    folder = job_dir(job)
    return {
        "given_code": str(folder / "given_code.py"),
        "public_splits": str(folder / "public.tsv"),
        "hidden_test": str(folder / "test.tsv"),
        "lab_dir": str(folder / "lab"),
        "seed": job.lab["seed"],
        "dataset": job.lab["dataset"],
        "check_memory_mb": job.grading["check_memory_mb"],
    }
