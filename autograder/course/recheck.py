"""Regrade one check for the class, without running any notebook again.

When an instructor fixes a check or changes its threshold mid-semester, the
notebooks need not train again: every result in the ``ResultStore`` keeps the
evidence its sandbox run left (evidence.json and the trained weights). For
each student, the check named ``check_id`` runs again on that evidence, under
the course's current checks and settings, its record replaces the old one,
and the result is stored under the key ``GradeSubmission`` now computes; then
the ``GradebookWriter`` writes the gradebook through nbgrader's autograde, as
in any batch. The other checks keep their earlier results (the summary's
``rechecked`` says which check ran again). A student whose notebook changed
since it was graded, or whose result kept no evidence, is listed with what to
run instead.
"""

from __future__ import annotations

from ..errors import UnknownCheck
from ..grading import engine
from ..model import Status
from . import intake
from .gradebook import GradebookWriter, Row
from .prepare import Sanitizer
from .progress import NoProgress, Progress


def known_checks(course) -> list[str]:
    """The check ids of the graded results, in their order."""
    ids: dict[str, None] = {}
    for summary in course.store.summaries(course.assignment).values():
        ids.update((check.id, None) for check in summary.checks)
    return list(ids)


class Rechecker:
    """Run one check again for all (or some) students, from their kept evidence."""

    def __init__(self, course, progress: Progress | None = None):
        self.course = course
        self.progress = progress or NoProgress()
        self.writer = GradebookWriter(course)

    def recheck(self, check_id: str, students: list[str] | None = None) -> list[Row]:
        known = known_checks(self.course)
        if check_id not in known:
            raise UnknownCheck(
                f"there is no check {check_id!r} in the graded results; checks: "
                + (", ".join(known) or "none (nothing graded yet)")
            )
        with self.course.lock():
            self.course.job()  # fails for the whole class, before anyone is listed as not rechecked
            entries = [e for e in self.course.entries(students) if e.status != Status.NO_SUBMISSION]
            self.progress.start(len(entries), f"Rechecking {check_id}")
            rows = []
            with self.writer.session() as gradebook:  # one gradebook session, as in a batch
                sanitizer = Sanitizer(self.course, gradebook)
                for entry in entries:
                    row = self._recheck_one(entry, sanitizer, check_id)
                    if row.status == Status.NOT_RECHECKED:
                        self.course.log_event("not_rechecked", student=row.student, check=check_id, why=row.message)
                    rows.append(row)
                    self.progress.advance()
            for row in rows:  # a step after the commit failed: not marked done
                if row.student in self.writer.failed:
                    row.status, row.message = Status.AUTOGRADE_FAILED, self.writer.failed[row.student]
            return rows

    def _recheck_one(self, entry: intake.Entry, sanitizer: Sanitizer, check_id: str) -> Row:
        course, student = self.course, entry.student
        if entry.status != Status.OK:
            return Row(student, Status.NOT_RECHECKED, message=f"no gradable notebook ({entry.status}): {entry.message}")
        try:
            p = sanitizer.prepare(entry)
        except Exception as exc:  # noqa: BLE001 - reported, the others go on
            return Row(
                student, Status.NOT_RECHECKED, message=f"nbgrader cannot sanitize it: {type(exc).__name__}: {exc}"[:500]
            )
        summary = course.store.summary(course.assignment, student)
        if not summary or not summary.key or summary.submission != p.submission.digest:
            return Row(
                student,
                Status.NOT_RECHECKED,
                message=(
                    "the notebook submitted now is not the one graded: grade it in full with "
                    f"`spamkit grade --student {student}`"
                ),
            )
        old = course.store.get(summary.key)
        evidence = course.store.evidence(summary.key)
        if old is None or evidence is None:
            return Row(
                student,
                Status.NOT_RECHECKED,
                message=(
                    "its stored result kept no evidence (graded by an earlier kit): grade it in full with "
                    f"`spamkit grade --student {student} --force`"
                ),
            )
        try:
            new = engine.recheck(old, evidence, course.job(), check_id)
        except Exception as exc:  # noqa: BLE001 - one failure must not stop the others
            course.log_event("recheck_failed", student=student, check=check_id, error=repr(exc)[:500])
            return Row(student, Status.GRADER_ERROR, message=f"{type(exc).__name__}: {exc}"[:500])
        key = course.store.place(p.submission)
        course.store.put(key, new)
        course.log_event("rechecked", student=student, key=key, check=check_id)
        row = self.writer.write(p, force=True, executed=False, key=key)
        if row.status == Status.GRADED:
            before, after = old.check(check_id), new.check(check_id)
            row.status = Status.RECHECKED
            row.message = f"{check_id}: {'-' if before is None else f'{before.score:g}'} -> {after.score:g}"
        return row
