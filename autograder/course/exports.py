"""Grades out: nbgrader's CSV, a per-check CSV, Gradescope results.json.

- ``grades.csv``: nbgrader's export (the columns of ``nbgrader export``), one
  row per student and assignment, from the gradebook. ``CsvExport`` is an
  nbgrader ``ExportPlugin`` writing those columns with the csv module (so a
  name with a comma stays one field); plain nbgrader can use it too:
  ``nbgrader export --exporter=autograder.nbgrader_plugins.CsvExport``.
- ``checks.csv``: one row per student, one column per check (its score),
  then the total and the maximum, from the kit's per-student summaries, then
  the gradebook's late penalty and the score after it.
- ``gradescope/<student>/results.json``: Gradescope's autograder format.
  Hidden checks (all but ``Exports.visible_checks``) have
  ``visibility: after_published``, so students see their messages once the
  instructor publishes grades. The score is the checks' total minus the
  gradebook's late penalty (said in the output). A student whose result must
  not be sent (``publish.held_back``: a grader error, not graded yet) gets no
  results.json (an earlier one is removed); they are listed with the reason
  in ``held_back.csv``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.plugins import ExportPlugin
from traitlets import Enum, List, Unicode
from traitlets.config import Configurable

from ..model import UNENFORCED_NOTE, Status, Summary, limits_unenforced
from . import late, publish
from .lms_export import export_lms, number_cell
from .sanitize import csv_cell
from .store import ResultStore

NBGRADER_COLUMNS = [
    "assignment",
    "duedate",
    "timestamp",
    "student_id",
    "last_name",
    "first_name",
    "email",
    "raw_score",
    "late_submission_penalty",
    "score",
    "max_score",
]


class Exports(Configurable):
    directory = Unicode("exports", help="folder (relative to the course root) the exports go to").tag(config=True)
    visible_checks = List(Unicode(), help="ids of checks whose result students see at once (Gradescope)").tag(
        config=True
    )
    hidden_visibility = Enum(
        ["hidden", "after_due_date", "after_published", "visible"],
        "after_published",
        help="Gradescope visibility of the other checks",
    ).tag(config=True)


class CsvExport(ExportPlugin):
    """nbgrader's CSV export, written with the csv module."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        students = {str(s) for s in self.student}
        assignments = {str(a) for a in self.assignment}
        with open(dest, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=NBGRADER_COLUMNS)
            writer.writeheader()
            for assignment in gradebook.assignments:
                if assignments and assignment.name not in assignments:
                    continue
                for student in gradebook.students:
                    if students and student.id not in students:
                        continue
                    row = {
                        "assignment": assignment.name,
                        "duedate": assignment.duedate,
                        "student_id": student.id,
                        "last_name": student.last_name,
                        "first_name": student.first_name,
                        "email": student.email,
                        "max_score": assignment.max_score,
                    }
                    try:
                        submission = gradebook.find_submission(assignment.name, student.id)
                    except MissingEntry:
                        row.update(timestamp="", raw_score=0.0, late_submission_penalty=0.0, score=0.0)
                    else:
                        penalty = submission.late_submission_penalty
                        row.update(
                            timestamp=submission.timestamp,
                            raw_score=submission.score,
                            late_submission_penalty=penalty,
                            score=max(0.0, submission.score - penalty),
                        )
                    writer.writerow({k: csv_cell(v) for k, v in row.items()})


def write_nbgrader_csv(db_url: str, course_id: str, dest: Path, assignment: str = "") -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    plugin = CsvExport(to=str(dest), assignment=[assignment] if assignment else [])
    with Gradebook(db_url, course_id) as gb:
        plugin.export(gb)
    return dest


def check_columns(summaries: dict[str, Summary]) -> list[tuple[str, str, float]]:
    """(id, name, points) of every check, in the order the checks ran."""
    columns: dict[str, tuple[str, str, float]] = {}
    for summary in summaries.values():
        for check in summary.checks:
            columns.setdefault(check.id, (check.id, check.name, float(check.points)))
    return list(columns.values())


def write_checks_csv(
    summaries: dict[str, Summary], dest: Path, penalties: dict[str, tuple[float, float]] | None = None
) -> Path:
    columns = check_columns(summaries)
    penalties = penalties or {}
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["student_id", "status", *[c[0] for c in columns], "total", "max_score", "late_submission_penalty", "score"]
        )
        for student, summary in sorted(summaries.items()):
            scores = {c.id: c.score for c in summary.checks}
            penalty = penalties.get(student, (0.0, 0.0))[0]
            writer.writerow(
                map(
                    csv_cell,
                    [
                        student,
                        summary.status,
                        *[f"{scores.get(c[0], 0.0):g}" for c in columns],
                        f"{summary.score:g}",
                        f"{summary.max_score:g}",
                        number_cell(penalty),
                        number_cell(max(0.0, summary.score - penalty)),
                    ],
                )
            )
    return dest


def gradescope_results(
    summary: Summary, visible: set[str], hidden_visibility: str, late_penalty: float = 0.0, seconds_late: float = 0.0
) -> dict:
    """One student's Gradescope ``results.json`` (score: the checks' total minus the late penalty, not below 0)."""
    if summary.status == Status.GRADER_ERROR:  # publish.held_back keeps these from export_all; never a 0 here
        raise ValueError("a grader error is no result to send")
    output = summary.status.gradescope or summary.status.instructor
    if summary.status != Status.OK and summary.message:
        output += f"\n{summary.message}"
    if limits_unenforced(summary.sandboxed, summary.limits_by):
        output += f"\n({UNENFORCED_NOTE})"
    if late_penalty:
        output += (
            f"\nSubmitted {late.lateness(seconds_late)} after the due date: the course's late policy takes "
            f"{late_penalty:g} of the {summary.score:g} points."
        )
    tests, cells = [], []
    for check in summary.checks:
        if check.cell not in cells:
            cells.append(check.cell)
        number = f"{cells.index(check.cell) + 1}.{sum(t['cell'] == check.cell for t in tests) + 1}"
        tests.append(
            {
                "score": float(check.score),
                "max_score": float(check.points),
                "name": check.name,
                "number": number,
                "cell": check.cell,
                "output": check.message if not check.passed else "",
                "visibility": "visible" if check.id in visible else hidden_visibility,
                "status": "passed" if check.passed else "failed",
                "output_format": "text",  # check messages quote student text: never render it as HTML
            }
        )
    return {
        "score": max(0.0, float(summary.score) - float(late_penalty)),
        "execution_time": round(float(summary.seconds or 0.0), 2),
        "output": output,
        "output_format": "text",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "tests": [{k: v for k, v in t.items() if k != "cell"} for t in tests],
    }


def write_gradescope(
    summaries: dict[str, Summary],
    folder: Path,
    visible: list[str],
    hidden_visibility: str,
    held: dict | None = None,
    penalties: dict[str, tuple[float, float]] | None = None,
) -> list[Path]:
    """results.json of each student, but none for the students ``held`` back (an earlier one is removed)."""
    paths, held, penalties = [], held or {}, penalties or {}
    for student, summary in sorted(summaries.items()):
        path = folder / student / "results.json"
        if student in held or summary.status == Status.GRADER_ERROR:
            path.unlink(missing_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        penalty, seconds = penalties.get(student, (0.0, 0.0))
        path.write_text(
            json.dumps(gradescope_results(summary, set(visible), hidden_visibility, penalty, seconds), indent=1),
            encoding="utf-8",
        )
        paths.append(path)
    return paths


def export_all(course, lms_report: list | None = None) -> dict[str, Path]:
    """Every export of the course's assignment into Exports.directory; returns what was written.

    The LMS import files (``lms_export``) come too; their ``LmsFiles`` (who is
    not in them, notes) is appended to ``lms_report`` if given. Who is held
    back from every student-facing file (``publish.held_back``) is in
    ``held_back.csv`` and on ``LmsFiles.held``.
    """
    settings = Exports(config=course.config)
    out = course.root / settings.directory
    summaries = ResultStore(course.root).summaries(course.assignment)
    held = publish.held_back(course)
    penalties = late.penalties(course)
    written = {
        "nbgrader_csv": write_nbgrader_csv(
            course.coursedir.db_url, course.coursedir.course_id, out / "grades.csv", course.assignment
        ),
        "checks_csv": write_checks_csv(summaries, out / "checks.csv", penalties),
        "held_back": publish.write_held(held, out / publish.HELD_FILE),
    }
    write_gradescope(
        summaries, out / "gradescope", settings.visible_checks, settings.hidden_visibility, held, penalties
    )
    written["gradescope"] = out / "gradescope"
    lms = export_lms(course, out, held)
    written.update(lms.paths)
    if lms_report is not None:
        lms_report.append(lms)
    return written
