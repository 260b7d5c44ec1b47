"""Grade a whole class: the expensive part on Dask, the gradebook through nbgrader.

There is one path from submission to grade, nbgrader's ``autograde`` with
the kit's ``GradeSubmission`` in place of ``Execute``. What makes it slow,
``engine.grade_notebook`` (sandboxed run + hidden checks), is plain data in,
data out. So a batch:

1. takes stock of the submissions (``intake.inventory``): a student without
   a usable notebook gets a clear result instead of stopping the batch;
2. sanitizes each notebook exactly as ``Autograde`` will (nbgrader's own
   sanitize preprocessors, same resources) and computes the same
   ``submission_key`` that ``GradeSubmission`` will compute;
3. sends what is not yet in the ``ResultStore`` to Dask workers (a local
   cluster, or a scheduler's address), shipping the ``GradingJob`` once
   (scattered) and each notebook as data, so workers need no course files;
4. as each result lands, stores it (atomic file) and runs nbgrader's
   autograde for that student in this process, serially: GradeSubmission
   finds the result in the store, and nbgrader writes the gradebook.

A batch killed at any point loses at most the submissions in flight; run it
again and it grades what is left. A student's gradebook entry is marked done
(``gradebook_key`` in the summary) only after nbgrader's autograde returned,
and a submission whose key is unchanged is not run again unless forced.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps.api import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.utils import find_all_files
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

from . import dblock, engine, intake, preprocessors
from .results import ResultStore, write_json_atomic
from .settings import Batch, Lab

log = logging.getLogger(__name__)

# Row statuses of the batch's summary table (besides the engine's run statuses).
GRADED = "graded"            # ran now and written to the gradebook
UP_TO_DATE = "up to date"    # unchanged since it was graded: nothing re-run
INVALID = "invalid"          # nbgrader's sanitize step rejected the notebook
GRADER_ERROR = "grader error"
AUTOGRADE_FAILED = "autograde failed"
UNKNOWN = "unknown student"


class BatchError(RuntimeError):
    """The batch cannot start; the message says why."""

    exit_code = 1


class BatchRunning(BatchError):
    """Another batch holds the course's lock."""

    exit_code = 3


@dataclass
class Row:
    """One student's line in the batch summary."""

    student: str
    status: str
    score: float | None = None
    max_score: float | None = None
    run_status: str = ""
    seconds: float | None = None
    message: str = ""
    executed: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """A submission ready to grade: what GradeSubmission will see."""

    student: str
    nb_json: str
    files: dict[str, bytes]
    key: str
    notes: list[str] = field(default_factory=list)
    submission: str = ""   # engine.submission_digest: the notebook and files, whatever the job


def utcnow() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
        self._api = None

    # --- nbgrader -------------------------------------------------------
    @property
    def api(self) -> NbGraderAPI:
        if self._api is None:
            os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
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

    def submitted_dir(self) -> Path:
        return Path(self.coursedir.format_path(self.coursedir.submitted_directory, ".", ".")).resolve()

    # --- grading --------------------------------------------------------
    def job(self) -> engine.GradingJob:
        """The course's GradingJob, shared with GradeSubmission in this process."""
        if self._job is None:
            self._job = engine.make_job(self.config, self.root)
            preprocessors._JOBS[preprocessors.course_root(self.config)] = self._job
        return self._job

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


class Sanitizer:
    """nbgrader's sanitize step of autograde, built the way Autograde builds it."""

    def __init__(self, course: Course):
        self.course = course
        self.converter = Autograde(coursedir=course.coursedir, config=course.config)
        self.exporter = NotebookExporter(parent=self.converter, config=self.converter.config)
        for pp in self.converter.sanitize_preprocessors:
            self.exporter.register_preprocessor(pp)

    def notebook(self, path: Path) -> nbformat.NotebookNode:
        """The notebook as GradeSubmission receives it (written and read back, as nbgrader does)."""
        resources = self.converter.init_single_notebook_resources(str(path))
        output, _ = self.exporter.from_filename(str(path), resources=resources)
        return nbformat.reads(output, as_version=4)

    def files(self, student: str) -> dict[str, bytes]:
        """The student's files as GradeSubmission finds them in autograded/."""
        cd, assignment = self.course.coursedir, self.course.assignment
        submitted = cd.format_path(cd.submitted_directory, student, assignment)
        source = cd.format_path(cd.source_directory, ".", assignment)
        exclude = {os.path.join(source, x) for x in self.converter.exclude_overwriting.get(assignment, [])}
        with tempfile.TemporaryDirectory(prefix="spamkit-files-") as tmp:
            for origin, names in ((submitted, find_all_files(submitted, cd.ignore + ["*.ipynb"])),
                                  (source, set(find_all_files(source, cd.ignore + ["*.ipynb"])) - exclude)):
                for name in names:
                    dest = Path(tmp) / os.path.relpath(name, origin)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.unlink(missing_ok=True)
                    shutil.copy(name, dest)
            return preprocessors.student_files(Path(tmp), self.course.notebook)

    def prepare(self, entry: intake.Entry) -> Prepared:
        nb = self.notebook(entry.notebook)
        files = self.files(entry.student)
        key = engine.submission_key(nb, files, self.course.job())
        return Prepared(entry.student, nbformat.writes(nb), files, key, list(entry.notes),
                        engine.submission_digest(nb, files))


# --- Dask ----------------------------------------------------------------------

def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def dask_client(settings: Batch, n_tasks: int, scheduler: str = "", n_workers: int = 0):
    """A Dask client: on ``scheduler`` (or Batch.scheduler_address), else a local cluster."""
    from distributed import Client, LocalCluster

    address = scheduler or settings.scheduler_address
    if address:
        with Client(address) as client:
            yield client
        return
    workers = n_workers or settings.n_workers or default_workers()
    workers = max(1, min(workers, n_tasks))
    with LocalCluster(n_workers=workers, threads_per_worker=settings.threads_per_worker, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


# --- the batch -----------------------------------------------------------------

class BatchGrader:
    """Grade all (or some) students of the course's assignment."""

    def __init__(self, course: Course, progress=None):
        self.course = course
        self.progress = progress  # a rich Progress, or None
        self._task = None

    # progress helpers
    def _start(self, total: int, text: str) -> None:
        if self.progress is not None:
            self._task = self.progress.add_task(text, total=total)

    def _advance(self, text: str | None = None) -> None:
        if self.progress is not None and self._task is not None:
            self.progress.update(self._task, advance=1, **({"description": text} if text else {}))

    def entries(self, students: list[str] | None) -> list[intake.Entry]:
        course = self.course
        entries = intake.inventory(course.submitted_dir(), course.assignment, course.notebook, course.roster())
        if students:
            wanted = set(students)
            entries = [e for e in entries if e.student in wanted]
            entries += [intake.Entry(s, UNKNOWN, message="not on the roster (gradebook) and no submitted folder")
                        for s in sorted(wanted - {e.student for e in entries})]
        return entries

    def grade(self, students: list[str] | None = None, force: bool = False, scheduler: str = "",
              n_workers: int = 0) -> list[Row]:
        with self.course.lock():
            return self._grade(students, force, scheduler, n_workers)

    def _grade(self, students, force, scheduler, n_workers) -> list[Row]:
        course = self.course
        with course.gradebook() as gb:
            try:
                gb.find_assignment(course.assignment)
            except MissingEntry:
                raise BatchError(f"{course.assignment} is not in the gradebook yet: run `spamkit release` first") from None
        entries = self.entries(students)
        self._start(len(entries), f"Grading {course.assignment}")
        rows: dict[str, Row] = {}
        prepared: list[Prepared] = []
        sanitizer = Sanitizer(course)
        for entry in entries:
            if entry.status == intake.OK:
                try:
                    prepared.append(sanitizer.prepare(entry))
                    continue
                except Exception as exc:  # noqa: BLE001 - nbgrader rejects the notebook: report, go on
                    rows[entry.student] = self._not_graded(
                        entry.student, INVALID, f"nbgrader cannot sanitize it: {type(exc).__name__}: {exc}"[:500],
                        entry.notes)
            elif entry.status == UNKNOWN:  # a typo in --student must not add a student to the gradebook
                rows[entry.student] = Row(entry.student, UNKNOWN, message=entry.message)
            else:
                rows[entry.student] = self._not_graded(entry.student, entry.status, entry.message, entry.notes)
            self._advance()

        pending = [p for p in prepared if force or course.store.get(p.key) is None]
        for p in prepared:
            if p not in pending:
                rows[p.student] = self._to_gradebook(p, force=force, executed=False)
                self._advance()
        if pending:
            self._run_on_dask(pending, rows, scheduler, n_workers)
        return [rows[s] for s in sorted(rows)]

    def _run_on_dask(self, pending: list[Prepared], rows: dict, scheduler: str, n_workers: int) -> None:
        from distributed import as_completed

        course = self.course
        job = course.job()
        with dask_client(Batch(config=course.config), len(pending), scheduler, n_workers) as client:
            job_future = client.scatter(job, broadcast=True)
            futures = {}
            for p in pending:
                future = client.submit(engine.grade_notebook, p.nb_json, p.files, job_future, course.notebook,
                                       key=f"grade-{p.student}-{p.key[:16]}", pure=False)
                futures[future] = p
                course.log_event("submitted", student=p.student, key=p.key)
            for future in as_completed(futures):
                p = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - one failure must not stop the batch
                    course.log_event("failed", student=p.student, key=p.key, error=repr(exc)[:500])
                    rows[p.student] = self._not_graded(p.student, GRADER_ERROR,
                                                       f"{type(exc).__name__}: {exc}"[:500], p.notes)
                else:
                    course.store.put(p.key, result)
                    worker = next(iter(client.who_has([future]).get(future.key, ())), None)
                    course.log_event("executed", student=p.student, key=p.key, seconds=result.get("seconds"),
                                     worker=worker)
                    rows[p.student] = self._to_gradebook(p, force=True, executed=True)
                finally:
                    future.release()
                self._advance()

    # --- gradebook, through nbgrader's autograde --------------------------------
    def _gradebook_has(self, student: str) -> bool:
        with self.course.gradebook() as gb:
            try:
                gb.find_submission(self.course.assignment, student)
            except MissingEntry:
                return False
        return True

    def _to_gradebook(self, p: Prepared, force: bool, executed: bool) -> Row:
        course = self.course
        path = course.store.summary_path(course.assignment, p.student)
        summary = _read_json(path)
        if (not force and summary and summary.get("key") == p.key and summary.get("gradebook_key") == p.key
                and self._gradebook_has(p.student)):
            return self._row(p.student, UP_TO_DATE, summary, p.notes, executed=False)
        with warnings.catch_warnings():  # nbgrader's gradebook code trips SQLAlchemy 2 autoflush warnings
            warnings.simplefilter("ignore", SAWarning)
            outcome = course.api.autograde(course.assignment, p.student, force=True, create=True)
        summary = _read_json(path)
        if not outcome.get("success") or not summary or summary.get("key") != p.key:
            why = (outcome.get("error") or outcome.get("log") or "")[-800:]
            if outcome.get("success"):
                why = "GradeSubmission graded a different submission key than the batch prepared"
            course.log_event("autograde_failed", student=p.student, key=p.key)
            return Row(p.student, AUTOGRADE_FAILED, message=why.strip(), executed=executed, notes=p.notes)
        summary.update(gradebook_key=p.key, autograded_at=utcnow(), notes=p.notes)
        write_json_atomic(path, summary)
        course.log_event("autograded", student=p.student, key=p.key)
        return self._row(p.student, GRADED, summary, p.notes, executed=executed)

    def _not_graded(self, student: str, status: str, message: str, notes: list[str]) -> Row:
        """Record a student without a gradable notebook (score 0), keep them in the gradebook's roster."""
        course = self.course
        with course.gradebook() as gb:
            gb.update_or_create_student(student)
        has_grade = self._gradebook_has(student)
        if has_grade:
            notes = [*notes, "the gradebook still holds an earlier grade of this student"]
        max_score = course.max_score()
        summary = {"key": None, "status": status, "message": message, "sandboxed": None, "seconds": 0.0,
                   "execute_seconds": 0.0, "check_seconds": 0.0, "peak_rss_mb": 0.0, "score": 0.0,
                   "max_score": max_score, "checks": [], "metrics": {}, "notes": notes}
        course.store.write_summary(course.assignment, student, summary)
        return Row(student, status, 0.0, max_score, message=message, notes=notes)

    @staticmethod
    def _row(student: str, status: str, summary: dict, notes: list[str], executed: bool) -> Row:
        return Row(student, status, summary["score"], summary["max_score"], summary["status"],
                   summary.get("seconds"), summary.get("message", ""), executed, notes)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

