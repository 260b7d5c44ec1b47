"""A course root: its settings, nbgrader's course directory and gradebook, the kit's store and log.

``open_course`` is the one way to get one, for the command line, the
programmatic API, the tests and the benchmarks: it opens the folder holding
``course_config.py``, or (``create=True``) makes a new course root in an
empty or missing folder from the kit's own course (source notebook and
configuration).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.apps.api import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets.config import Config

from ..errors import BatchRunning, JobUnavailable, KitError, UsageError
from ..model import Status
from ..settings import REPO_ROOT, Lab, load_course_config
from . import dblock, intake
from .store import ResultStore

COURSE_FILES = ("course_config.py", "nbgrader_config.py")


def path_with_venv_tools(path: str | None = None) -> str:
    """PATH with this Python's scripts first: nbgrader runs ``alembic`` and ``jupyter`` as commands."""
    path = os.environ.get("PATH", "") if path is None else path
    tools = str(Path(sys.executable).parent)
    return path if path.split(os.pathsep)[0] == tools else os.pathsep.join([tools, path])


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def make_course_root(root: Path) -> None:
    """A new course root from the kit's own course (source notebook, configs)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        REPO_ROOT / "source", root / "source", ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
    )
    for name in COURSE_FILES:
        shutil.copy(REPO_ROOT / name, root / name)


def open_course(
    root: str | os.PathLike | None = None, overrides: Config | None = None, *, create: bool = False
) -> Course:
    """The course in ``root`` (default: the current folder), with ``overrides`` over course_config.py.

    With ``create``, an empty or missing folder becomes a new course root first.
    """
    root = Path(root or os.getcwd()).resolve()
    if not (root / "course_config.py").is_file():
        if not create:
            raise UsageError(
                f"{root} is not a course root (no course_config.py); use --course-dir, "
                "or `spamkit demo --course-dir NEW_FOLDER` to make one"
            )
        if root.exists() and any(root.iterdir()):
            raise UsageError(f"{root} is neither a course root nor empty: give an empty or new --course-dir")
        make_course_root(root)
    config = load_course_config(root)
    if overrides:
        config.merge(overrides)
    return Course(root, config)


class Course:
    """A course root: its config, nbgrader's course directory and the kit's store."""

    def __init__(self, root: Path, config: Config):
        self.root = Path(root).resolve()
        config = Config(config)
        config.CourseDirectory.root = str(self.root)
        self.config = config
        self.coursedir = CourseDirectory(config=config)
        self.lab = Lab(config=config)
        self.assignment = self.lab.assignment
        self.notebook = self.lab.notebook
        self.store = ResultStore(self.root)
        self._job = None
        self._sandboxes_at_once: int | None = None  # None: as many as Batch.n_workers (or cores)
        self._api = None
        os.environ["PATH"] = path_with_venv_tools()

    # --- nbgrader -------------------------------------------------------
    @property
    def api(self) -> NbGraderAPI:
        if self._api is None:
            self._api = NbGraderAPI(coursedir=self.coursedir, config=self.config)
        return self._api

    def gradebook(self) -> Gradebook:
        return Gradebook(self.coursedir.db_url, self.coursedir.course_id)

    def roster(self) -> list[str]:
        with self.gradebook() as gb:
            return sorted(s.id for s in gb.students)

    def max_score(self) -> float:
        """Points of the autograded cells (what the checks can give)."""
        with self.gradebook() as gb:
            return float(gb.find_assignment(self.assignment).max_code_score)

    def is_released(self) -> bool:
        """The assignment is in the gradebook (a fresh clone has release/ but no gradebook yet)."""
        with self.gradebook() as gb:
            return any(a.name == self.assignment for a in gb.assignments)

    def release(self, force: bool = False) -> dict:
        """nbgrader generate_assignment, then the due date (LateWork.due_date) into the gradebook; nbgrader's
        outcome (success, log, error)."""
        outcome = self.api.generate_assignment(self.assignment, force=force, create=True)
        if outcome.get("success"):
            from .late import sync_due_date

            sync_due_date(self)
        return outcome

    def folder(self, step: str, student: str = ".") -> Path:
        """nbgrader's folder of this assignment at a step: source, release, submitted, autograded, feedback."""
        return Path(
            self.coursedir.format_path(getattr(self.coursedir, f"{step}_directory"), student, self.assignment)
        ).resolve()

    def submitted_dir(self) -> Path:
        return Path(self.coursedir.format_path(self.coursedir.submitted_directory, ".", ".")).resolve()

    def entries(self, students: list[str] | None = None) -> list[intake.Entry]:
        """What came in, one entry per student (all, or those asked for; an unknown id is reported)."""
        entries = intake.inventory(self.submitted_dir(), self.assignment, self.notebook, self.roster())
        if students:
            wanted = set(students)
            entries = [e for e in entries if e.student in wanted]
            entries += [
                intake.Entry(s, Status.UNKNOWN_STUDENT, message="not on the roster (gradebook) and no submitted folder")
                for s in sorted(wanted - {e.student for e in entries})
            ]
        return entries

    # --- grading --------------------------------------------------------
    def job(self):
        """The course's GradingJob, built once per Course (and again if ``grade_with`` changes it)."""
        from ..grading.job import make_job

        if self._job is None:
            try:
                self._job = make_job(self.config, self.root, self._sandboxes_at_once)
            except KitError:
                raise
            except Exception as exc:  # the data, the source notebook: the course's problem, no student's
                raise JobUnavailable(
                    f"the grading job cannot be built, so no student was graded: {type(exc).__name__}: {exc}"
                ) from exc
        return self._job

    def grade_with(self, sandboxes_at_once: int | None) -> None:
        """How many sandboxes the next batch runs at once (it decides each one's CPU threads, so the job)."""
        if sandboxes_at_once != self._sandboxes_at_once:
            self._sandboxes_at_once = sandboxes_at_once
            self._job = None

    @contextlib.contextmanager
    def lock(self):
        """One batch at a time per course (the OS drops the lock if the batch is killed),
        and per course and assignment in a shared server gradebook (``dblock``)."""
        path = self.store.root / "batch.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BatchRunning(f"another batch is grading this course ({path} is locked)") from None
            with dblock.batch_lock(self.coursedir.db_url, self.coursedir.course_id, self.assignment) as refused:
                if refused:
                    raise BatchRunning(refused)
                yield

    def log_event(self, event: str, **data) -> None:
        """Append one line to the batch log (.kit/log/<assignment>.jsonl)."""
        path = self.store.root / "log" / f"{self.assignment}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": utcnow(), "event": event, **data}) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def events(self) -> list[dict]:
        path = self.store.root / "log" / f"{self.assignment}.jsonl"
        out = []
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out
