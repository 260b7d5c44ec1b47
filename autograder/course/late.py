"""Late work: the course's due date and late policy, through nbgrader's own late-penalty machinery.

nbgrader decides lateness: at autograde, ``AssignLatePenalties`` compares the
submission's time (``timestamp.txt`` in ``submitted/<student>/<assignment>/``,
written by nbgrader's exchange, or by ``zip_collect`` when the file names hold
a time) with the assignment's due date in the gradebook, and asks the
``LateSubmissionPlugin`` (``c.AssignLatePenalties.plugin_class``) for the
penalty, which it stores as the notebook's ``late_submission_penalty``. Every
grade the kit sends out (grades.csv, checks.csv, Gradescope, the Canvas and
Moodle files, the Canvas upload, feedback) is the score minus that penalty.

- ``LateWork.due_date`` (course_config.py) is the due date; the kit writes it
  into the gradebook's assignment at ``spamkit release`` and before each
  autograde (nbgrader's own way is ``nbgrader db assignment add <a> --duedate=...``).
- ``LatePenalty`` is nbgrader's ``LateSubmissionPlugin`` with one more method,
  ``per_day``: ``percent_per_day`` of the notebook's score for each started
  day late after ``grace_minutes``, and the whole score from
  ``zero_after_days`` on. nbgrader's ``none`` and ``zero`` keep their meaning.
"""

from __future__ import annotations

import math

from nbgrader.api import MissingEntry
from nbgrader.plugins import LateSubmissionPlugin
from nbgrader.utils import parse_utc
from traitlets import Enum, Float, Unicode, validate
from traitlets.config import Configurable

from ..errors import KitError


class LateWork(Configurable):
    due_date = Unicode(
        "",
        help='the assignment\'s due date, e.g. "2026-11-20 17:00:00 Europe/Berlin" or "2026-11-20 16:00:00 UTC" '
        "(nbgrader's format: date, time, time zone); written into the gradebook at `spamkit release` and "
        "before each autograde. Empty: the gradebook's due date stays as it is (none: nothing is late)",
    ).tag(config=True)

    @validate("due_date")
    def _valid_due_date(self, proposal):
        value = proposal["value"].strip()
        if value:
            try:
                parse_utc(value)
            except (ValueError, OverflowError) as exc:
                raise KitError(f"LateWork.due_date {value!r} is not a date nbgrader reads: {exc}") from None
        return value


class LatePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin, with a per-day policy (``penalty_method = 'per_day'``)."""

    penalty_method = Enum(
        ("none", "zero", "per_day"),
        default_value="none",
        help="'none': no penalty; 'zero': the whole score; 'per_day': percent_per_day of the "
        "score for each started day late (after grace_minutes), the whole score from "
        "zero_after_days on",
    ).tag(config=True)
    percent_per_day = Float(10.0, help="per_day: percent of the notebook's score lost per started day late").tag(
        config=True
    )
    grace_minutes = Float(0.0, help="per_day: minutes after the due date that are not late").tag(config=True)
    zero_after_days = Float(0.0, help="per_day: days late from which the whole score is lost (0: never)").tag(
        config=True
    )

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float | None:
        if self.penalty_method != "per_day":
            return super().late_submission_penalty(student_id, score, total_seconds_late)
        score = float(score or 0.0)
        late = float(total_seconds_late) - 60.0 * self.grace_minutes
        if late <= 0 or score <= 0:
            return 0.0
        days = math.ceil(late / 86400.0)
        if self.zero_after_days and late >= self.zero_after_days * 86400.0:
            return score
        return min(score, round(score * self.percent_per_day / 100.0 * days, 6))


def sync_due_date(course) -> str:
    """Write LateWork.due_date into the gradebook's assignment (if set); the due date it now has ('' if none)."""
    wanted = LateWork(config=course.config).due_date
    with course.gradebook() as gb:
        if wanted:
            gb.update_or_create_assignment(course.assignment, duedate=wanted)
        try:
            due = gb.find_assignment(course.assignment).duedate
        except MissingEntry:
            return ""
    return str(due) if due else ""


def penalties(course) -> dict[str, tuple[float, float]]:
    """{student: (late penalty, seconds late)} of every submission in the gradebook."""
    out = {}
    with course.gradebook() as gb:
        for student in gb.students:
            try:
                submission = gb.find_submission(course.assignment, student.id)
            except MissingEntry:
                continue
            out[student.id] = (
                float(submission.late_submission_penalty or 0.0),
                float(submission.total_seconds_late or 0.0),
            )
    return out


def lateness(seconds: float) -> str:
    """'2 days 3 hours' / '5 minutes': how late, for a student to read."""
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, (minutes // 60) % 24, minutes % 60
    parts = [
        f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in ((days, "day"), (hours, "hour"), (mins, "minute")) if n
    ]
    return " ".join(parts[:2]) or f"{int(seconds)} seconds"
