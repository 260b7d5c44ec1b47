"""Exports read back with the csv and json modules, checked against the gradebook."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import pytest
from kit_testing import ASSIGNMENT, course_env, open_course, summary
from nbgrader.api import Gradebook, MissingEntry

from autograder.course.exports import NBGRADER_COLUMNS, export_all
from autograder.course.report import write_report
from autograder.model import Status

STUDENTS = ("alice", "bob", "carol", "dave")


def gradebook(root):
    return Gradebook(f"sqlite:///{root / 'gradebook.db'}")


def code_scores(gb, student) -> dict[str, float] | None:
    try:
        notebook = gb.find_submission(ASSIGNMENT, student).notebooks[0]
    except MissingEntry:
        return None
    return {g.name: g.auto_score for g in notebook.grades if g.cell.cell_type == "code"}


@pytest.fixture(scope="module")
def exported(graded_course):
    root, _ = graded_course
    course = open_course(root)
    return root, export_all(course)


def test_nbgrader_csv_matches_gradebook(exported):
    root, written = exported
    with open(written["nbgrader_csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == NBGRADER_COLUMNS
    by_student = {r["student_id"]: r for r in rows}
    assert set(by_student) == set(STUDENTS)
    assert by_student["dave"]["last_name"] == "Doe, Jr."  # a comma stays inside its field
    with gradebook(root) as gb:
        for student in STUDENTS:
            try:
                expected = gb.find_submission(ASSIGNMENT, student).score
            except MissingEntry:
                expected = 0.0
            assert float(by_student[student]["score"]) == pytest.approx(expected)
            assert float(by_student[student]["max_score"]) == gb.find_assignment(ASSIGNMENT).max_score


def test_checks_csv_matches_gradebook_and_summaries(exported):
    root, written = exported
    with open(written["checks_csv"], newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = {r[0]: dict(zip(header, r)) for r in reader}
    assert header[:2] == ["student_id", "status"]
    assert header[-4:] == ["total", "max_score", "late_submission_penalty", "score"]
    check_ids = header[2:-4]
    assert check_ids == [c["id"] for c in summary(root, "alice")["checks"]]
    assert set(rows) == set(STUDENTS)
    with gradebook(root) as gb:
        for student in STUDENTS:
            row, scores = rows[student], code_scores(gb, student)
            total = 0.0 if scores is None else sum(scores.values())
            assert float(row["total"]) == pytest.approx(total)
            assert sum(float(row[c]) for c in check_ids) == pytest.approx(total)
            by_check = {c["id"]: c["score"] for c in summary(root, student)["checks"]}
            assert all(float(row[c]) == by_check.get(c, 0.0) for c in check_ids)
    assert rows["carol"]["status"] == Status.UNREADABLE and rows["dave"]["status"] == Status.NO_SUBMISSION


def test_gradescope_results_json(exported):
    root, written = exported
    with gradebook(root) as gb:
        for student in STUDENTS:
            data = json.loads((written["gradescope"] / student / "results.json").read_text())
            assert set(data) == {
                "score",
                "execution_time",
                "output",
                "output_format",
                "test_output_format",
                "test_name_format",
                "visibility",
                "tests",
            }
            scores = code_scores(gb, student)
            assert data["score"] == pytest.approx(0.0 if scores is None else sum(scores.values()))
            assert sum(t["score"] for t in data["tests"]) == pytest.approx(data["score"])
            for test in data["tests"]:
                assert set(test) == {
                    "score",
                    "max_score",
                    "name",
                    "number",
                    "output",
                    "output_format",
                    "visibility",
                    "status",
                }
                assert test["visibility"] == "after_published"
                assert test["status"] == ("passed" if test["score"] == test["max_score"] else "failed")
                assert re.fullmatch(r"\d+\.\d+", test["number"])
    bob = json.loads((written["gradescope"] / "bob" / "results.json").read_text())
    failed = [t for t in bob["tests"] if t["status"] == "failed"]
    assert failed and all(t["output"] for t in failed)  # each failed check says why
    carol = json.loads((written["gradescope"] / "carol" / "results.json").read_text())
    assert carol["tests"] == [] and "corrupt" in carol["output"]


def test_nbgrader_export_uses_the_plugin(exported):
    """Plain `nbgrader export` with the kit's exporter gives the same rows."""
    root, written = exported
    subprocess.run(
        [
            sys.executable,
            "-m",
            "nbgrader",
            "export",
            "--exporter=autograder.nbgrader_plugins.CsvExport",
            "--to=plain.csv",
        ],
        cwd=root,
        env=course_env(),
        check=True,
        capture_output=True,
    )
    with open(root / "plain.csv", newline="") as a, open(written["nbgrader_csv"], newline="") as b:
        assert list(csv.DictReader(a)) == list(csv.DictReader(b))


def test_class_report(exported):
    root, _ = exported
    html = write_report(open_course(root)).read_text()
    assert html.count("data:image/png;base64,") == 4
    for student in STUDENTS:
        assert student in html
    attention = html.split("Students needing attention")[1].split("<h2>")[0]
    assert "carol" in attention and "dave" in attention and "alice" not in attention


def test_feedback_command(exported):
    root, _ = exported
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "feedback", "--no-progress"],
        cwd=root,
        env=course_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    made = sorted(p.relative_to(root / "feedback").parts[0] for p in (root / "feedback").rglob("*.html"))
    assert made == ["alice", "bob"]  # graded submissions only
    html = (root / "feedback" / "alice" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "Grader checks:" in html and "BEGIN HIDDEN TESTS" not in html
