"""Which results may reach a student: never a grader error, never a submission not graded yet.

Every path that takes a result to a student (Gradescope's results.json, the
Canvas and Moodle import files, the Canvas upload, the LMS feedback, the
feedback HTML) asks ``held_back`` first and leaves out whoever it names, with
the reason, for the instructor: ``exports/held_back.csv`` and the command's
output. A student is held back when

- the kit's last grading of them ended in a grader error (``Status.GRADER_ERROR``:
  the grader failed, not the notebook); an older grade the gradebook may still
  hold is held back too, since it is not of the work graded last;
- their submitted notebook has not been graded yet: neither a kit result nor
  a gradebook grade, or only a kit result from before it was submitted (e.g.
  "no submission");
- the kit graded it but nbgrader's autograde did not write it into the
  gradebook (no submission there).

A student without a gradable notebook (no submission, empty, corrupt, wrong
name, rejected by nbgrader) is not held back: that 0 is what they handed in,
and each path says so as it did.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import MissingEntry

from ..model import INTAKE, Status
from .sanitize import csv_cell

HELD_FILE = "held_back.csv"
HELD_COLUMNS = ["student_id", "status", "reason"]


@dataclass
class Held:
    student: str
    status: str  # the kit's status of the student ("grader error", "not graded", ...)
    reason: str


def held_back(course) -> dict[str, Held]:
    """{student: Held} of everyone whose result must not be sent to them."""
    summaries = course.store.summaries(course.assignment)
    with course.gradebook() as gb:
        in_gradebook = set()
        for student in gb.students:
            try:
                gb.find_submission(course.assignment, student.id)
            except MissingEntry:
                continue
            in_gradebook.add(student.id)
    held: dict[str, Held] = {}
    for student, summary in summaries.items():
        if summary.status == Status.GRADER_ERROR:
            held[student] = Held(
                student,
                str(Status.GRADER_ERROR),
                "the grader failed on this submission ("
                + (summary.message or "no message")[:300]
                + "); grade it again (spamkit grade --student ID --force)"
                + ("; the gradebook's earlier grade is not sent" if student in in_gradebook else ""),
            )
        elif summary.graded and student not in in_gradebook:
            held[student] = Held(
                student,
                "not in the gradebook",
                "graded, but nbgrader's autograde did not write the grade (autograde failed?); run spamkit grade again",
            )
    for entry in course.entries():
        if entry.status != Status.OK or entry.student in held:
            continue
        summary = summaries.get(entry.student)
        # no kit result but a gradebook grade: graded outside the kit's batch (formgrader, the gradebook's API)
        if (summary is None and entry.student not in in_gradebook) or (
            summary is not None and not summary.graded and summary.status.kind == INTAKE
        ):
            held[entry.student] = Held(
                entry.student, "not graded", "a notebook was submitted and is not graded yet (spamkit grade)"
            )
    return held


def write_held(held: dict[str, Held], dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HELD_COLUMNS)
        for h in sorted(held.values(), key=lambda h: h.student):
            writer.writerow([csv_cell(h.student), csv_cell(h.status), csv_cell(h.reason)])
    return dest
