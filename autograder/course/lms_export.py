"""Grades back to the LMS: a Canvas and a Moodle grade import CSV.

``spamkit export`` writes, next to grades.csv, one import file per LMS the
course's submissions came from (``spamkit collect --zip``) or has a roster for:

- ``canvas_grades.csv``: Canvas' gradebook import format (*Grades → Import*):
  ``Student, ID, SIS User ID, SIS Login ID, Section, <Title (assignment id)>``
  and Canvas' optional ``Points Possible`` row. Canvas matches rows by ``ID``,
  the Canvas user id, which the intake read from the download's file names
  (``lms_ids``). ``LmsExport.canvas_roster``, the CSV of Canvas' own
  gradebook export (*Grades → Export*, same first five columns), adds names,
  SIS ids and sections, and says who is enrolled.
- ``moodle_grades.csv``: for Moodle's *Grades → Import → CSV file*, matched by
  ``Email address`` (or ``ID number``), with ``Full name`` and one grade
  column. Moodle's download names files by the assignment's *participant
  id*, which is neither; the only Moodle file holding both is the
  assignment's grading worksheet (*Assignment → View all submissions →
  Download grading worksheet*: ``Identifier`` = ``Participant <id>``,
  ``Full name``, ``Email address``, ...), so that is
  ``LmsExport.moodle_roster``.
- ``lms_unlisted.csv``: everyone who is not in an import file and why: no LMS
  id, not on the roster, no grade in the gradebook, conflicting ids, and
  roster students who have no grade. Nobody is dropped silently.

Each export writes these files anew, and deletes one it does not write this
time (it would hold old grades).

The grade is the gradebook's, as in grades.csv: the submission's score
(autograded and manual grades) minus the late penalty, never below 0; a
student without a submission in the gradebook has no grade (a blank the LMS
leaves alone), and is listed. So is a student whose result must not be sent
(``publish.held_back``: the last grading ended in a grader error, or the
submission is not graded yet), even if the gradebook holds an older grade.
Names and ids come from students and LMS files: they go through
``sanitize.csv_cell``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from traitlets import Bool, Enum, Int, Unicode
from traitlets.config import Configurable

from ..errors import LmsExportError
from . import lms_ids
from .sanitize import csv_cell

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
CANVAS_POINTS_ROW = "    Points Possible"  # as Canvas writes it in its own export
MOODLE_WORKSHEET_COLUMNS = ["Identifier", "Full name", "Email address"]
MOODLE_MATCH_COLUMNS = {"email": "Email address", "idnumber": "ID number"}
UNLISTED_COLUMNS = ["lms", "student_id", "lms_id", "name", "score", "reason"]
FILE_NAMES = {"canvas_csv": "canvas_grades.csv", "moodle_csv": "moodle_grades.csv", "lms_unlisted": "lms_unlisted.csv"}


def number_cell(value: float | None) -> str:
    """A score as the shortest exact decimal ('' for no score): a grade is never student text."""
    if value is None:
        return ""
    return repr(float(value)) if float(value) != int(value) else str(int(value))


class LmsExport(Configurable):
    """Where the LMS import files get names, sections and the assignment column."""

    canvas_roster = Unicode(
        "",
        help="Canvas gradebook export (Grades → Export) of the course, relative to the course root: "
        "names, SIS ids, sections and who is enrolled. Optional: without it rows have the ids and "
        "the names from the download",
    ).tag(config=True)
    canvas_assignment = Unicode(
        "",
        help='Canvas gradebook column, "Title (assignment id)" as in Canvas\' export, e.g. '
        '"Spam lab (12345)"; default: the nbgrader assignment name, which Canvas imports as a '
        "new assignment",
    ).tag(config=True)
    canvas_points_possible = Bool(True, help="write Canvas' optional 'Points Possible' row").tag(config=True)
    moodle_roster = Unicode(
        "",
        help="the Moodle assignment's grading worksheet (View all submissions → Download grading "
        "worksheet), relative to the course root; needed for the Moodle file",
    ).tag(config=True)
    moodle_match = Enum(
        ["email", "idnumber"],
        "email",
        help="identity column Moodle's import maps users by: 'Email address' or 'ID number' "
        "(a worksheet column when the site shows ID numbers)",
    ).tag(config=True)
    moodle_grade_item = Unicode(
        "",
        help="name of the grade column (default: the nbgrader assignment name); "
        "mapped to the Moodle assignment on import",
    ).tag(config=True)
    canvas_url = Unicode(
        "",
        help="Canvas address for `spamkit export --upload`, e.g. https://canvas.example.edu "
        "(the API token comes from the environment: CANVAS_API_TOKEN)",
    ).tag(config=True)
    canvas_course_id = Int(0, help="Canvas course id for `spamkit export --upload` (in the course's address)").tag(
        config=True
    )


@dataclass
class Unlisted:
    lms: str
    student: str  # nbgrader id ("" for a roster student unknown to the gradebook)
    lms_id: str
    name: str
    score: float | None
    reason: str


@dataclass
class LmsFiles:
    """What the LMS export wrote and what the instructor should know."""

    paths: dict[str, Path] = field(default_factory=dict)
    unlisted: list[Unlisted] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a roster that cannot be used: that file is not written
    rows: dict[str, int] = field(default_factory=dict)  # lms -> students with a grade in its file
    matched: dict[str, list] = field(default_factory=dict)  # lms -> its file's rows (Matched)
    canvas_column: str = ""
    max_score: float = 0.0
    held: dict = field(default_factory=dict)  # publish.held_back: student -> Held, left out of every file


# --- the gradebook's grades ------------------------------------------------------


def gradebook_grades(db_url: str, course_id: str, assignment: str) -> tuple[dict[str, float | None], float]:
    """({student: score after late penalty, or None without a submission}, the assignment's max score)."""
    grades: dict[str, float | None] = {}
    with Gradebook(db_url, course_id) as gb:
        max_score = float(gb.find_assignment(assignment).max_score)
        for student in gb.students:
            try:
                submission = gb.find_submission(assignment, student.id)
            except MissingEntry:
                grades[student.id] = None
            else:
                grades[student.id] = max(0.0, submission.score - submission.late_submission_penalty)
    return grades, max_score


# --- rosters ---------------------------------------------------------------------


def _read_csv(path: Path, needed: list[str], what: str) -> tuple[list[str], list[dict]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            header = [h.strip() for h in reader.fieldnames or []]
    except OSError as exc:
        raise LmsExportError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise LmsExportError(f"the {what} {path} is not a UTF-8 CSV file ({exc})") from None
    missing = [c for c in needed if c not in header]
    if missing:
        raise LmsExportError(
            f"the {what} {path} has no column {', '.join(map(repr, missing))} (columns: {', '.join(header) or 'none'})"
        )
    # (a row with more cells than the header has them under the key None: not a column)
    return header, [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in rows]


def read_canvas_roster(path: Path, column: str = "") -> tuple[dict[str, dict], float | None]:
    """({Canvas user id: row}, the Points Possible of ``column`` if the export has it) of a Canvas export."""
    header, rows = _read_csv(path, ["Student", "ID"], "Canvas roster (gradebook export)")
    roster, points = {}, None
    for row in rows:
        if row.get("Student") == CANVAS_POINTS_ROW.strip() and column in header:
            try:
                points = float(row[column])
            except ValueError:
                pass
        if row.get("ID", "").isdigit():  # skips Canvas' "Points Possible" and other non-student rows
            roster[row["ID"]] = {c: row.get(c, "") for c in CANVAS_COLUMNS}
    return roster, points


def read_moodle_worksheet(path: Path, match_column: str) -> tuple[dict[str, dict], float | None]:
    """({participant id: row}, the largest 'Maximum Grade') of a Moodle grading worksheet."""
    header, rows = _read_csv(path, [*MOODLE_WORKSHEET_COLUMNS, match_column], "Moodle roster (grading worksheet)")
    roster, maximum = {}, None
    for row in rows:
        found = re.search(r"(\d+)\s*$", row.get("Identifier", ""))
        if found:
            roster[found[1]] = row
        try:
            maximum = max(maximum or 0.0, float(row.get("Maximum Grade", "").replace(",", ".")))
        except ValueError:
            pass
    return roster, maximum


# --- matching --------------------------------------------------------------------


@dataclass
class Matched:
    student: str
    lms_id: str
    name: str
    score: float
    roster_row: dict


@dataclass
class Match:
    """One LMS's view of the class: who goes in its file, who is listed."""

    lms: str
    rows: list[Matched] = field(default_factory=list)
    unlisted: list[Unlisted] = field(default_factory=list)


def match_students(
    lms: str,
    grades: dict[str, float | None],
    ids: dict[str, dict],
    roster: dict[str, dict] | None,
    name_column: str,
    held: dict | None = None,
) -> Match:
    """Pair gradebook students with LMS users; everyone left over is listed with the reason.

    ``held`` (student -> ``publish.Held``): students whose result must not be sent, listed with its reason.
    """
    held = held or {}
    label = lms_ids.LMS_NAMES[lms]
    out = Match(lms)
    owners: dict[str, list[str]] = {}
    for student, entry in ids.items():
        if lms in entry:
            owners.setdefault(entry[lms]["id"], []).append(student)
    placed: set[str] = set()
    for student in sorted(set(grades) | {s for s, e in ids.items() if lms in e}):
        score = grades.get(student)
        entry = ids.get(student, {}).get(lms)
        if entry is None:
            out.unlisted.append(
                Unlisted(
                    label,
                    student,
                    "",
                    "",
                    score,
                    f"no {label} id: not collected from a {label} download (spamkit collect --zip --lms {lms})",
                )
            )
            continue
        lms_id = entry["id"]
        placed.add(lms_id)
        row = (roster or {}).get(lms_id)
        name = row[name_column] if row and row.get(name_column) else entry.get("name", "")
        if entry.get("other_ids"):
            why = f"several {label} ids were collected for this student: {', '.join([lms_id, *entry['other_ids']])}"
        elif len(owners[lms_id]) > 1:
            why = f"{label} id {lms_id} was collected for several students: {', '.join(sorted(owners[lms_id]))}"
        elif student in held:
            why = f"not sent: {held[student].reason}"
        elif student not in grades:
            why = "collected, but not in the gradebook (not graded yet)"
        elif roster is not None and row is None:
            why = f"{label} id {lms_id} is not on the {label} roster"
        elif score is None:
            why = "no grade in the gradebook (no gradable submission, or not graded yet)"
        else:
            out.rows.append(Matched(student, lms_id, name, score, row or {}))
            continue
        out.unlisted.append(Unlisted(label, student, lms_id, name, score, why))
    for lms_id, row in sorted((roster or {}).items()):
        if lms_id not in placed:
            out.unlisted.append(
                Unlisted(
                    label, "", lms_id, row.get(name_column, ""), None, f"on the {label} roster, no submission collected"
                )
            )
    return out


# --- the files -------------------------------------------------------------------


def write_csv(dest: Path, header: list[str], rows: list[list[str]]) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([csv_cell(h) for h in header])
        writer.writerows(rows)
    return dest


def canvas_rows(match: Match, max_score: float, points_row: bool) -> list[list[str]]:
    rows = [[CANVAS_POINTS_ROW, "", "", "", "", number_cell(max_score)]] if points_row else []
    for m in match.rows:
        r = m.roster_row
        rows.append(
            [
                csv_cell(m.name or m.student),
                csv_cell(m.lms_id),
                csv_cell(r.get("SIS User ID")),
                csv_cell(r.get("SIS Login ID")),
                csv_cell(r.get("Section")),
                number_cell(m.score),
            ]
        )
    return rows


def moodle_rows(match: Match, match_column: str) -> list[list[str]]:
    return [[csv_cell(m.roster_row.get(match_column)), csv_cell(m.name), number_cell(m.score)] for m in match.rows]


def unlisted_rows(unlisted: list[Unlisted]) -> list[list[str]]:
    return [
        [u.lms, csv_cell(u.student), csv_cell(u.lms_id), csv_cell(u.name), number_cell(u.score), u.reason]
        for u in unlisted
    ]


def export_lms(course, out: Path, held: dict | None = None) -> LmsFiles:
    """The LMS import files of the course's assignment into ``out``, for each LMS it has ids or a roster of.

    ``held`` (``publish.held_back``; computed here if not given): students left out, with the reason.
    """
    settings = LmsExport(config=course.config)
    ids = lms_ids.read_ids(course.root, course.assignment)
    result = LmsFiles()
    for name in FILE_NAMES.values():  # a file of an earlier export that is not made again would hold old grades
        (out / name).unlink(missing_ok=True)
    wanted = {lms for entry in ids.values() for lms in entry}
    wanted |= {
        lms for lms, roster in (("canvas", settings.canvas_roster), ("moodle", settings.moodle_roster)) if roster
    }
    if not wanted:
        return result
    if held is None:
        from .publish import held_back

        held = held_back(course)
    result.held = held
    grades, max_score = gradebook_grades(course.coursedir.db_url, course.coursedir.course_id, course.assignment)
    for lms, write in (("canvas", _canvas), ("moodle", _moodle)):
        if lms in wanted:
            try:
                write(course, settings, grades, max_score, ids, out, result)
            except LmsExportError as exc:
                result.errors.append(f"no {lms_ids.LMS_NAMES[lms]} file: {exc}")
    result.paths["lms_unlisted"] = write_csv(
        out / FILE_NAMES["lms_unlisted"], UNLISTED_COLUMNS, unlisted_rows(result.unlisted)
    )
    return result


def _canvas(course, settings: LmsExport, grades, max_score: float, ids, out: Path, result: LmsFiles) -> None:
    column = settings.canvas_assignment or course.assignment
    roster = points = None
    if settings.canvas_roster:
        roster, points = read_canvas_roster(course.root / settings.canvas_roster, column)
    if not re.search(r"\(\d+\)\s*$", column):
        result.notes.append(
            f"the Canvas column {column!r} names no Canvas assignment id, so Canvas imports it as "
            f'a new assignment; set LmsExport.canvas_assignment = "Title (id)"'
        )
    if points is not None and points != max_score:
        result.notes.append(
            f"Canvas lists {points:g} points possible for {column!r}, the gradebook's maximum is "
            f"{max_score:g}: the file has the gradebook's points"
        )
    match = match_students("canvas", grades, ids, roster, "Student", result.held)
    result.paths["canvas_csv"] = write_csv(
        out / FILE_NAMES["canvas_csv"],
        [*CANVAS_COLUMNS, column],
        canvas_rows(match, max_score, settings.canvas_points_possible),
    )
    result.unlisted += match.unlisted
    result.rows["canvas"] = len(match.rows)
    result.matched["canvas"], result.canvas_column, result.max_score = match.rows, column, max_score


def _moodle(course, settings: LmsExport, grades, max_score: float, ids, out: Path, result: LmsFiles) -> None:
    if not settings.moodle_roster:
        result.unlisted += [
            Unlisted(
                "Moodle",
                s,
                e["moodle"]["id"],
                e["moodle"].get("name", ""),
                grades.get(s),
                "no Moodle roster (LmsExport.moodle_roster)",
            )
            for s, e in sorted(ids.items())
            if "moodle" in e
        ]
        result.notes.append(
            "no Moodle file: Moodle imports grades by e-mail or ID number, which the download's "
            "file names do not hold; set LmsExport.moodle_roster to the assignment's grading "
            "worksheet"
        )
        return
    match_column = MOODLE_MATCH_COLUMNS[settings.moodle_match]
    roster, maximum = read_moodle_worksheet(course.root / settings.moodle_roster, match_column)
    if maximum is not None and maximum != max_score:
        result.notes.append(
            f"the Moodle worksheet's maximum grade is {maximum:g}, the gradebook's maximum is "
            f"{max_score:g}: the file has the gradebook's points"
        )
    match = match_students("moodle", grades, ids, roster, "Full name", result.held)
    for m in [m for m in match.rows if not m.roster_row.get(match_column)]:
        match.rows.remove(m)
        match.unlisted.append(
            Unlisted("Moodle", m.student, m.lms_id, m.name, m.score, f"no {match_column!r} on the Moodle roster")
        )
    result.paths["moodle_csv"] = write_csv(
        out / FILE_NAMES["moodle_csv"],
        [match_column, "Full name", settings.moodle_grade_item or course.assignment],
        moodle_rows(match, match_column),
    )
    result.unlisted += match.unlisted
    result.rows["moodle"] = len(match.rows)
    result.matched["moodle"] = match.rows
