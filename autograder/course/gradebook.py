"""Grades into nbgrader's gradebook, for the batch and for rechecks alike.

A graded result reaches the gradebook only through nbgrader's own autograde,
run in this process for one student: ``AutogradeWithJob`` hands the course's
GradingJob to ``GradeSubmission``, which finds the result stored under the
submission's key, and nbgrader's ``SaveAutoGrades`` writes the grades. A
student's summary is marked done (``gradebook_key``) only after autograde
returned, so a killed batch never leaves a grade half-written unnoticed.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

from nbgrader.api import MissingEntry
from nbgrader.utils import capture_log, temp_attrs
from sqlalchemy.exc import SAWarning

from ..model import Status, Summary, limits_unenforced
from .autograde import AutogradeWithJob
from .course import utcnow
from .prepare import Prepared


@dataclass
class Row:
    """One student's line in a batch's (or a recheck's) summary table."""

    student: str
    status: Status
    score: float | None = None
    max_score: float | None = None
    run_status: Status | None = None     # how the notebook run ended, if it ran
    seconds: float | None = None
    message: str = ""
    executed: bool = False               # the notebook ran in this batch
    notes: list[str] = field(default_factory=list)
    reused_from: str | None = None       # graded from the run of this classmate's identical code
    unenforced: bool = False             # the run's limits were only watched (model.UNENFORCED_NOTE)

    @classmethod
    def of_summary(cls, student: str, status: Status, summary: Summary, notes: list[str], executed: bool) -> Row:
        return cls(student, status, summary.score, summary.max_score, summary.status, summary.seconds,
                   summary.message, executed, notes, summary.reused_from,
                   limits_unenforced(summary.sandboxed, summary.limits_by))


class GradebookWriter:
    """Writes one course's grades through nbgrader's autograde."""

    def __init__(self, course):
        self.course = course
        self._due_date_synced = False

    def has_grade(self, student: str) -> bool:
        with self.course.gradebook() as gb:
            try:
                gb.find_submission(self.course.assignment, student)
            except MissingEntry:
                return False
        return True

    def autograde(self, student: str) -> dict:
        """nbgrader's autograde of one student, in this process, with the course's job; nbgrader's outcome."""
        course = self.course
        if not self._due_date_synced:   # nbgrader's AssignLatePenalties reads the gradebook's due date
            from .late import sync_due_date
            sync_due_date(course)
            self._due_date_synced = True
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
        if (not force and summary and summary.key == key and summary.gradebook_key == key
                and summary.submission == p.submission.digest and self.has_grade(p.student)):
            return Row.of_summary(p.student, Status.UP_TO_DATE, summary, p.notes, executed=False)
        started = time.monotonic()
        outcome = self.autograde(p.student)
        summary = course.store.summary(course.assignment, p.student)
        if not outcome.get("success") or not summary or summary.key != key:
            why = (outcome.get("error") or outcome.get("log") or "")[-800:]
            if outcome.get("success"):
                why = "GradeSubmission graded a different submission key than the batch prepared"
            course.log_event("autograde_failed", student=p.student, key=key)
            return Row(p.student, Status.AUTOGRADE_FAILED, message=why.strip(), executed=executed, notes=p.notes)
        summary.gradebook_key, summary.autograded_at, summary.notes = key, utcnow(), list(p.notes)
        course.store.write_summary(course.assignment, p.student, summary)
        course.log_event("autograded", student=p.student, key=key, seconds=round(time.monotonic() - started, 3),
                         reused_from=summary.reused_from)
        return Row.of_summary(p.student, Status.GRADED, summary, p.notes, executed=executed)

    def not_graded(self, student: str, status: Status, message: str, notes: list[str]) -> Row:
        """Record a student without a gradable notebook (score 0), keep them in the gradebook's roster."""
        course = self.course
        with course.gradebook() as gb:
            gb.update_or_create_student(student)
        if self.has_grade(student):
            notes = [*notes, "the gradebook still holds an earlier grade of this student"]
        max_score = course.max_score()
        course.store.write_summary(course.assignment, student, Summary.not_graded(status, message, max_score, notes))
        return Row(student, status, 0.0, max_score, message=message, notes=notes)
