"""Regrade one check for the class, without running any notebook again.

When an instructor fixes a check or changes its threshold mid-semester, the
notebooks need not train again: every result in the ``ResultStore`` keeps the
evidence its sandbox run left (evidence.json and the trained weights). For
each student, the check named ``check_id`` runs again on that evidence, under
the course's current checks and settings, its record replaces the old one,
and the result is stored under the key ``GradeSubmission`` now computes; then
nbgrader's autograde writes the gradebook as in any batch. The other checks
keep their earlier results (the summary's ``rechecked`` says which check ran
again). A student whose notebook changed since it was graded, or whose result
kept no evidence, is listed with what to run instead.
"""

from __future__ import annotations

from ..grading import engine
from . import intake
from .batch import GRADED, GRADER_ERROR, BatchGrader, Row, Sanitizer, _read_json

RECHECKED = "rechecked"
NOT_RECHECKED = "not rechecked"


def known_checks(course) -> list[str]:
    """The check ids of the graded results, in their order."""
    ids: dict[str, None] = {}
    for summary in course.store.summaries(course.assignment).values():
        ids.update((check["id"], None) for check in summary.get("checks", []))
    return list(ids)


class Rechecker(BatchGrader):
    """Run one check again for all (or some) students, from their kept evidence."""

    def recheck(self, check_id: str, students: list[str] | None = None) -> list[Row]:
        with self.course.lock():
            entries = [e for e in self.entries(students) if e.status != intake.NO_SUBMISSION]
            self._start(len(entries), f"Rechecking {check_id}")
            sanitizer = Sanitizer(self.course)
            rows = []
            for entry in entries:
                row = self._recheck_one(entry, sanitizer, check_id)
                if row.status == NOT_RECHECKED:
                    self.course.log_event("not_rechecked", student=row.student, check=check_id, why=row.message)
                rows.append(row)
                self._advance()
            return rows

    def _recheck_one(self, entry: intake.Entry, sanitizer: Sanitizer, check_id: str) -> Row:
        course, student = self.course, entry.student
        if entry.status != intake.OK:
            return Row(student, NOT_RECHECKED, message=f"no gradable notebook ({entry.status}): {entry.message}")
        try:
            p = sanitizer.prepare(entry)
        except Exception as exc:  # noqa: BLE001 - reported, the others go on
            return Row(student, NOT_RECHECKED, message=f"nbgrader cannot sanitize it: {type(exc).__name__}: {exc}"[:500])
        summary = _read_json(course.store.summary_path(course.assignment, student)) or {}
        if not summary.get("key") or summary.get("submission") != p.submission:
            return Row(student, NOT_RECHECKED, message=(
                "the notebook submitted now is not the one graded: grade it in full with "
                f"`spamkit grade --student {student}`"))
        old = course.store.get(summary["key"])
        evidence = course.store.evidence(summary["key"])
        if old is None or evidence is None:
            return Row(student, NOT_RECHECKED, message=(
                "its stored result kept no evidence (graded by an earlier kit): grade it in full with "
                f"`spamkit grade --student {student} --force`"))
        try:
            new = engine.recheck(old, evidence, course.job(), check_id)
        except Exception as exc:  # noqa: BLE001 - one failure must not stop the others
            course.log_event("recheck_failed", student=student, check=check_id, error=repr(exc)[:500])
            return Row(student, GRADER_ERROR, message=f"{type(exc).__name__}: {exc}"[:500])
        course.store.put(p.key, new)
        course.log_event("rechecked", student=student, key=p.key, check=check_id)
        row = self._to_gradebook(p, force=True, executed=False)
        if row.status == GRADED:
            before = next((c["score"] for c in old["checks"] if c["id"] == check_id), None)
            after = next(c["score"] for c in new["checks"] if c["id"] == check_id)
            row.status = RECHECKED
            row.message = f"{check_id}: {'-' if before is None else f'{before:g}'} -> {after:g}"
        return row
