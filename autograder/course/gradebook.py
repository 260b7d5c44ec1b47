"""Grades into nbgrader's gradebook, for the batch and for rechecks alike.

A graded result reaches the gradebook only through nbgrader's autograde steps:
``GradeSubmission`` finds the result stored under the submission's key,
and nbgrader's ``SaveAutoGrades`` writes the grades. Two ways, the same rows:

- **in a session** (a batch, a recheck: ``GradebookWriter.session()``): the
  student's notebook, prepared (sanitized, keyed) by the batch, goes through
  the course's ``Autograde.autograde_preprocessors`` with nbgrader's
  gradebook steps on one open ``SessionGradebook`` (``gradebook_session.py``);
  the files and the autograded notebook are written where and as nbgrader's
  autograde writes them. The session commits every
  ``BatchClient.chunk_students`` students or ``chunk_seconds`` seconds,
  and whenever the batch waits for Dask;
  A late submission's penalty is nbgrader's ``AssignLatePenalties``, run on
  its own after the commit (it takes a share of the committed score);
- **nbgrader's own autograde** of one student (``AutogradeWithJob``, as
  ``nbgrader autograde`` runs it): for a student excluded by
  ``CourseDirectory.student_id_exclude``, a course with convert hooks, and
  outside a session.

A student's summary is marked done (``gradebook_key``, and the batch log's
``autograded`` event) only after the transaction holding their grades
committed, so a killed batch never leaves a grade half-written unnoticed:
the next batch writes every student not marked, from the stored result.
"""

from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbconvert.writers import FilesWriter
from nbformat.v4 import new_notebook
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import AssignLatePenalties
from nbgrader.utils import capture_log, setenv, temp_attrs
from sqlalchemy.exc import SAWarning
from traitlets import Float, Int
from traitlets.config import Configurable

from ..model import Status, Summary, limits_unenforced
from .autograde import KIT, AutogradeWithJob, KitResources
from .course import utcnow
from .gradebook_session import SessionGradebook, in_session
from .prepare import Prepared, copy_assignment_files


class BatchClient(Configurable):
    """The batch client's own work per student: its gradebook transactions, its preparation processes."""

    chunk_students = Int(50, help="a batch commits the gradebook after this many students (at the latest)").tag(
        config=True
    )
    chunk_seconds = Float(
        2.0,
        help="a batch commits the gradebook when its oldest uncommitted student is this "
        "many seconds old, and whenever it waits for Dask",
    ).tag(config=True)
    prepare_processes = Int(
        -1,
        help="processes beside the client that prepare submissions (nbgrader's sanitize "
        "steps, the keys) while it writes grades; -1: one per core but one, for a "
        "batch of at least prepare_processes_from notebooks; 0: the client "
        "prepares them itself",
    ).tag(config=True)
    prepare_processes_from = Int(
        40, help="the fewest notebooks for which -1 starts preparation processes (each takes seconds to start)"
    ).tag(config=True)

    def preparers(self, notebooks: int, cores: int) -> int:
        if self.prepare_processes >= 0:
            return self.prepare_processes
        return max(0, cores - 1) if notebooks >= self.prepare_processes_from else 0


@dataclass
class Row:
    """One student's line in a batch's (or a recheck's) summary table."""

    student: str
    status: Status
    score: float | None = None
    max_score: float | None = None
    run_status: Status | None = None  # how the notebook run ended, if it ran
    seconds: float | None = None
    message: str = ""
    executed: bool = False  # the notebook ran in this batch
    notes: list[str] = field(default_factory=list)
    reused_from: str | None = None  # graded from the run of this classmate's identical code
    unenforced: bool = False  # the run's limits were only watched (model.UNENFORCED_NOTE)

    @classmethod
    def of_summary(cls, student: str, status: Status, summary: Summary, notes: list[str], executed: bool) -> Row:
        return cls(
            student,
            status,
            summary.score,
            summary.max_score,
            summary.status,
            summary.seconds,
            summary.message,
            executed,
            notes,
            summary.reused_from,
            limits_unenforced(summary.sandboxed, summary.limits_by),
        )


class GradebookWriter:
    """Writes one course's grades through nbgrader's autograde steps."""

    def __init__(self, course):
        self.course = course
        self._due_date_synced = False
        self.gradebook: SessionGradebook | None = None
        self._pending: list[tuple[Prepared, str, Summary, bool, float, dict | None]] = []
        self._since = 0.0
        self._writes = BatchClient(config=course.config)
        self._converter: AutogradeWithJob | None = None
        self._exporter: NotebookExporter | None = None
        self._max_score: float | None = None
        self.failed: dict[str, str] = {}  # students whose write failed after their row was made (late penalty)

    # --- the batch's session --------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self):
        """Write in one open gradebook session until the block ends; commits as it goes and at the end."""
        course = self.course
        self._sync_due_date()
        self._max_score = course.max_score()
        self.gradebook = SessionGradebook(course.coursedir.db_url, course.coursedir.course_id)
        try:
            yield self.gradebook
            self.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # what was written whole still counts (a kill, an error)
                self.commit()
            raise
        finally:
            self._pending.clear()  # not committed: not marked done, written again by the next batch
            self.gradebook.close()
            self.gradebook = None

    def commit(self) -> None:
        """Commit the session's writes, then mark each of its students done (summary and batch log)."""
        if self.gradebook is None:
            return
        started = time.monotonic()
        self.gradebook.commit()
        pending, self._pending = self._pending, []
        share = (time.monotonic() - started) / max(1, len(pending))
        course = self.course
        for p, key, summary, executed, seconds, late in pending:
            if late is not None:  # nbgrader's own step, on the committed score, in a connection of its own
                step = time.monotonic()
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", SAWarning)
                        AssignLatePenalties(parent=self._exporter).preprocess(new_notebook(), late)
                except Exception as exc:  # noqa: BLE001 - not marked done: the next batch writes it again
                    self._failed(p, key, executed, f"nbgrader's AssignLatePenalties: {type(exc).__name__}: {exc}")
                    self.failed[p.student] = f"{type(exc).__name__}: {exc}"
                    continue
                seconds += time.monotonic() - step
            summary.gradebook_key, summary.autograded_at, summary.notes = key, utcnow(), list(p.notes)
            course.store.write_summary(course.assignment, p.student, summary)
            course.log_event(
                "autograded",
                student=p.student,
                key=key,
                seconds=round(seconds + share, 4),
                reused_from=summary.reused_from,
            )

    def _maybe_commit(self) -> None:
        if len(self._pending) >= self._writes.chunk_students or (
            self._pending and time.monotonic() - self._since >= self._writes.chunk_seconds
        ):
            self.commit()

    # --- the gradebook as it is -------------------------------------------------------------------
    def _sync_due_date(self) -> None:
        if not self._due_date_synced:  # nbgrader's AssignLatePenalties reads the gradebook's due date
            from .late import sync_due_date

            sync_due_date(self.course)
            self._due_date_synced = True

    def has_grade(self, student: str) -> bool:
        course = self.course
        with contextlib.ExitStack() as stack:
            gb = self.gradebook or stack.enter_context(course.gradebook())
            try:
                gb.find_submission(course.assignment, student)
            except MissingEntry:
                return False
        return True

    # --- writing --------------------------------------------------------------------------------
    def autograde(self, student: str) -> dict:
        """nbgrader's autograde of one student, in this process, with the course's job; nbgrader's outcome."""
        course = self.course
        self._sync_due_date()
        with temp_attrs(course.coursedir, assignment_id=course.assignment, student_id=student):
            app = AutogradeWithJob(job=course.job(), coursedir=course.coursedir, parent=course.api)
            app.force = True
            app.create_student = True
            with warnings.catch_warnings():  # nbgrader's gradebook code trips SQLAlchemy 2 autoflush warnings
                warnings.simplefilter("ignore", SAWarning)
                return capture_log(app)

    def write(self, p: Prepared, *, force: bool, executed: bool, key: str | None = None) -> Row:
        """The result stored under ``key`` (default: ``p``'s key) into the gradebook.

        Skipped when that result and this very notebook (Markdown answers included) are in the gradebook
        already, unless forced.
        """
        course = self.course
        key = key or p.key
        summary = course.store.summary(course.assignment, p.student)
        if (
            not force
            and summary
            and summary.key == key
            and summary.gradebook_key == key
            and summary.submission == p.submission.digest
            and self.has_grade(p.student)
        ):
            return Row.of_summary(p.student, Status.UP_TO_DATE, summary, p.notes, executed=False)
        started = time.monotonic()
        if self.gradebook is not None and self._in_session_allowed(p):
            try:
                with self.gradebook.student(), warnings.catch_warnings():
                    warnings.simplefilter("ignore", SAWarning)  # nbgrader's code trips SQLAlchemy 2 autoflush warnings
                    late = self._autograde_in_session(p)
                    summary = course.store.summary(course.assignment, p.student)
                    if not summary or summary.key != key:
                        raise _Mismatch()
            except _Mismatch:
                return self._failed(
                    p, key, executed, "GradeSubmission graded a different submission key than the batch prepared"
                )
            except Exception as exc:  # noqa: BLE001 - nbgrader or the kit refused this notebook: report, go on
                return self._failed(p, key, executed, f"{type(exc).__name__}: {exc}")
            else:
                if not self._pending:
                    self._since = time.monotonic()
                self._pending.append((p, key, summary, executed, time.monotonic() - started, late))
                self._maybe_commit()
                return Row.of_summary(p.student, Status.GRADED, summary, p.notes, executed=executed)
        self.commit()  # nbgrader's own autograde opens its own connections: the session's writes go first
        outcome = self.autograde(p.student)
        summary = course.store.summary(course.assignment, p.student)
        if not outcome.get("success") or not summary or summary.key != key:
            why = (outcome.get("error") or outcome.get("log") or "")[-800:]
            if outcome.get("success"):
                why = "GradeSubmission graded a different submission key than the batch prepared"
            return self._failed(p, key, executed, why)
        summary.gradebook_key, summary.autograded_at, summary.notes = key, utcnow(), list(p.notes)
        course.store.write_summary(course.assignment, p.student, summary)
        course.log_event(
            "autograded",
            student=p.student,
            key=key,
            seconds=round(time.monotonic() - started, 3),
            reused_from=summary.reused_from,
        )
        return Row.of_summary(p.student, Status.GRADED, summary, p.notes, executed=executed)

    def _failed(self, p: Prepared, key: str, executed: bool, why: str) -> Row:
        self.course.log_event("autograde_failed", student=p.student, key=key)
        return Row(p.student, Status.AUTOGRADE_FAILED, message=why.strip()[-800:], executed=executed, notes=p.notes)

    def _in_session_allowed(self, p: Prepared) -> bool:
        """Whether nbgrader's autograde would do no more for this student than the session does."""
        cd, converter = self.course.coursedir, self._autograde_converter()
        excluded = cd.student_id_exclude and p.student in cd.student_id_exclude.split(",")
        return (
            p.path is not None
            and not excluded
            and converter.pre_convert_hook is None
            and converter.post_convert_hook is None
        )

    def _autograde_converter(self) -> AutogradeWithJob:
        if self._converter is None:
            course = self.course
            self._converter = AutogradeWithJob(job=course.job(), coursedir=course.coursedir, parent=course.api)
            self._converter.writer = FilesWriter(parent=self._converter, config=self._converter.config)
            self._exporter = NotebookExporter(parent=self._converter, config=self._converter.config)
            for pp in in_session(self._converter.autograde_preprocessors):
                self._exporter.register_preprocessor(pp)
        return self._converter

    def _autograde_in_session(self, p: Prepared) -> dict | None:
        """What nbgrader's autograde does for one student, on the session, from the notebook the batch prepared:
        the student and the submission (with its timestamp), the files and the notebook in
        autograded/<student>/<assignment>/, the autograde preprocessors (grades, comments, penalty), the
        files' permissions. A late submission's resources for nbgrader's AssignLatePenalties, else None."""
        course, gb = self.course, self.gradebook
        cd, assignment = course.coursedir, course.assignment
        converter = self._autograde_converter()
        gb.update_or_create_student(p.student)
        timestamp = cd.get_existing_timestamp(cd.format_path(cd.submitted_directory, p.student, assignment))
        if timestamp:
            gb.update_or_create_submission(assignment, p.student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(assignment, p.student)
        dest = Path(cd.format_path(cd.autograded_directory, p.student, assignment))
        if dest.exists():
            shutil.rmtree(dest)
        copy_assignment_files(course, converter, p.student, dest)
        resources = converter.init_single_notebook_resources(str(p.path))
        resources["metadata"] = {"name": course.notebook, "path": str(dest)}
        resources[KIT] = KitResources(job=course.job(), submission=p.submission, gradebook=gb)
        nb = nbformat.reads(p.submission.nb_json, as_version=4)
        with setenv(NBGRADER_EXECUTION="autograde"):
            output, resources = self._exporter.from_notebook_node(nb, resources=resources)
        converter.write_single_notebook(output, resources)
        converter.set_permissions(assignment, p.student)
        return {"nbgrader": dict(resources["nbgrader"])} if resources[KIT].get("late") else None

    def not_graded(self, student: str, status: Status, message: str, notes: list[str]) -> Row:
        """Record a student without a gradable notebook (score 0), keep them in the gradebook's roster."""
        course = self.course
        if self.gradebook is not None:
            with self.gradebook.student():
                self.gradebook.update_or_create_student(student)
        else:
            with course.gradebook() as gb:
                gb.update_or_create_student(student)
        if self.has_grade(student):
            notes = [*notes, "the gradebook still holds an earlier grade of this student"]
        max_score = self._max_score if self._max_score is not None else course.max_score()
        course.store.write_summary(course.assignment, student, Summary.not_graded(status, message, max_score, notes))
        return Row(student, status, 0.0, max_score, message=message, notes=notes)


class _Mismatch(Exception):
    pass
