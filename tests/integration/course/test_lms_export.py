"""Grades back to Canvas and Moodle: the import files parse back and equal the gradebook.

The LMS ids come from real LMS downloads through ``spamkit collect --zip``;
the grades are put in nbgrader's gradebook through its API (autograded and
manual scores, a late penalty), so no notebook runs here.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import urllib.parse
import warnings
import zipfile
from pathlib import Path

import nbformat
import pytest
from kit_testing import ASSIGNMENT, course_env, make_course, read_csv, release_notebook, write_csv
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from traitlets.config import Config

from autograder.course import lms_export, lms_ids
from autograder.course.lms_export import number_cell
from autograder.course.sanitize import csv_cell
from autograder.errors import LmsExportError

SPAMKIT = [sys.executable, "-m", "autograder"]
CANVAS_COLUMN = "Spam lab (12345)"

CANVAS_DOWNLOAD = {  # Canvas "Download Submissions": lastfirst[_late]_<user id>_<submission id>_<file>
    "doejane_1001_900001_spam_transformer.ipynb",
    "roejim_late_1002_900002_spam_transformer-1.ipynb",
    "=HYPERLINK(1)_1003_900003_spam_transformer.ipynb",  # a student-chosen name, not on the roster
    "kimbo_1004_900004_spam_transformer.ipynb",  # collected, never graded
}
MOODLE_DOWNLOAD = {  # Moodle "Download all submissions": Full Name_<participant id>_assignsubmission_file_<file>
    "Ann Lee_2001_assignsubmission_file_spam_transformer.ipynb",
    "Bo Chu_2002_assignsubmission_file_spam_transformer.ipynb",  # no e-mail address on the worksheet
}
CANVAS_ROSTER = [  # Canvas Grades → Export, as Canvas writes it
    ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", CANVAS_COLUMN, "Current Score"],
    ["    Points Possible", "", "", "", "", "25.00", "(read only)"],
    ["Doe, Jane", "1001", "S1001", "jdoe", "Lab A", "", "90"],
    ["=Roe+Jim", "1002", "S1002", "@jroe", "-Lab B", "", "80"],
    ["Kim, Bo", "1004", "S1004", "bkim", "Lab A", "", ""],
    ["Enrolled, Never", "1005", "S1005", "never", "Lab B", "", ""],
]
MOODLE_WORKSHEET = [  # Moodle assignment → View all submissions → Download grading worksheet
    [
        "Identifier",
        "Full name",
        "Email address",
        "Status",
        "Grade",
        "Maximum Grade",
        "Grade can be changed",
        "Last modified (submission)",
        "Last modified (grade)",
        "Feedback comments",
    ],
    ["Participant 2001", "Ann Lee", "ann@example.edu", "Submitted for grading", "", "25.00", "Yes", "", "", ""],
    ["Participant 2002", "+Bo Chu", "", "Submitted for grading", "", "25.00", "Yes", "", "", ""],
    ["Participant 2003", "Cy Dee", "cy@example.edu", "No submission", "", "25.00", "Yes", "", "", ""],
]
# (autograded scores of test_compile, test_fit, test_plot), manual analysis score, late penalty
GRADES = {
    "1001": ((5.0, 9.0, 6.0), 4.5, 0.0),
    "1002": ((5.0, 0.0, 3.0), 2.0, 2.5),  # late
    "1003": ((5.0, 9.0, 0.0), None, 0.0),
    "2001": ((5.0, 9.0, 6.0), 5.0, 0.0),
    "2002": ((0.0, 0.0, 0.0), None, 0.0),
    "zed": ((1.0, 2.0, 3.0), 1.0, 0.0),  # added by hand: no LMS id
}


def spamkit(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*SPAMKIT, *args, "--no-progress"], cwd=root, env=course_env(), capture_output=True, text=True, timeout=600
    )


def fill_gradebook(root: Path) -> None:
    """Submissions and grades through nbgrader's Gradebook API, as autograde and formgrader leave them."""
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore", SAWarning)  # nbgrader's add_submission under SQLAlchemy 2
        gb.update_or_create_student("1004")  # on nbgrader's roster (collected), no submission
        for student, (auto, manual, penalty) in GRADES.items():
            gb.update_or_create_student(student)
            submission = gb.add_submission(ASSIGNMENT, student, timestamp="2026-11-20 10:00:00 UTC")
            for cell, score in zip(("test_compile", "test_fit", "test_plot"), auto):
                gb.find_grade(cell, ASSIGNMENT, ASSIGNMENT, student).auto_score = score
            gb.find_grade("analysis", ASSIGNMENT, ASSIGNMENT, student).manual_score = manual
            submission.notebooks[0].late_submission_penalty = penalty
        gb.db.commit()


def expected_scores(root: Path) -> dict[str, float | None]:
    """Score after late penalty per gradebook student, straight from nbgrader's objects."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        out = {}
        for student in gb.students:
            try:
                sub = gb.find_submission(ASSIGNMENT, student.id)
            except MissingEntry:
                out[student.id] = None
            else:
                out[student.id] = max(0.0, sub.score - sub.late_submission_penalty)
        return out


@pytest.fixture(scope="module")
def lms_course(tmp_path_factory):
    where = tmp_path_factory.mktemp("lms")
    root = make_course(where / "course")
    nb = nbformat.writes(release_notebook(root)).encode()
    for name, files in (("canvas", CANVAS_DOWNLOAD), ("moodle", MOODLE_DOWNLOAD)):
        archive = where / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for file in files:
                zf.writestr(file, nb)
        proc = spamkit(root, "collect", "--zip", str(archive), "--lms", name)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    write_csv(root / "lms" / "canvas.csv", CANVAS_ROSTER)
    write_csv(root / "lms" / "moodle.csv", MOODLE_WORKSHEET)
    with open(root / "course_config.py", "a") as fh:
        fh.write(
            '\nc.LmsExport.canvas_roster = "lms/canvas.csv"\n'
            f'c.LmsExport.canvas_assignment = "{CANVAS_COLUMN}"\n'
            'c.LmsExport.moodle_roster = "lms/moodle.csv"\n'
            'c.LmsExport.moodle_grade_item = "Spam lab"\n'
        )
    fill_gradebook(root)
    proc = spamkit(root, "export")
    return root, proc


def test_intake_records_the_lms_ids(lms_course):
    root, _ = lms_course
    ids = lms_ids.read_ids(root, ASSIGNMENT)
    assert {s: {lms: e["id"] for lms, e in entry.items()} for s, entry in ids.items()} == {
        "1001": {"canvas": "1001"},
        "1002": {"canvas": "1002"},
        "1003": {"canvas": "1003"},
        "1004": {"canvas": "1004"},
        "2001": {"moodle": "2001"},
        "2002": {"moodle": "2002"},
    }
    assert ids["1002"]["canvas"]["file"].endswith("/roejim_late_1002_900002_spam_transformer-1.ipynb")
    assert ids["2001"]["moodle"]["name"] == "Ann Lee"


def test_canvas_file_parses_back_and_equals_the_gradebook(lms_course):
    root, proc = lms_course
    assert proc.returncode == 0, proc.stdout + proc.stderr
    scores = expected_scores(root)
    nbgrader_csv = {r["student_id"]: float(r["score"]) for r in read_csv(root / "exports" / "grades.csv")}
    rows = read_csv(root / "exports" / "canvas_grades.csv")
    assert list(rows[0]) == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", CANVAS_COLUMN]
    points, *students = rows
    assert points["Student"] == "    Points Possible" and float(points[CANVAS_COLUMN]) == 25.0
    assert [r["ID"] for r in students] == ["1001", "1002"]
    for row in students:
        assert float(row[CANVAS_COLUMN]) == pytest.approx(scores[row["ID"]])
        assert float(row[CANVAS_COLUMN]) == nbgrader_csv[row["ID"]]  # one source: grades.csv's numbers
    assert float(students[0][CANVAS_COLUMN]) == 24.5  # autograded 20 + manual 4.5
    assert float(students[1][CANVAS_COLUMN]) == 7.5  # 8 + 2 - late penalty 2.5
    # roster data, with student text kept from running as a formula in a spreadsheet
    assert students[0] == {
        "Student": "Doe, Jane",
        "ID": "1001",
        "SIS User ID": "S1001",
        "SIS Login ID": "jdoe",
        "Section": "Lab A",
        CANVAS_COLUMN: "24.5",
    }
    assert (students[1]["Student"], students[1]["SIS Login ID"], students[1]["Section"]) == (
        "'=Roe+Jim",
        "'@jroe",
        "'-Lab B",
    )


def test_moodle_file_parses_back_and_equals_the_gradebook(lms_course):
    root, _ = lms_course
    scores = expected_scores(root)
    rows = read_csv(root / "exports" / "moodle_grades.csv")
    assert rows == [
        {"Email address": "ann@example.edu", "Full name": "Ann Lee", "Spam lab": number_cell(scores["2001"])}
    ]
    assert float(rows[0]["Spam lab"]) == 25.0


def test_everyone_left_out_is_listed_with_the_reason(lms_course):
    root, proc = lms_course
    unlisted = read_csv(root / "exports" / "lms_unlisted.csv")
    by = {(r["lms"], r["student_id"] or r["lms_id"]): r for r in unlisted}
    assert set(by) == {
        ("Canvas", "1003"),
        ("Canvas", "1004"),
        ("Canvas", "2001"),
        ("Canvas", "2002"),
        ("Canvas", "zed"),
        ("Canvas", "1005"),
        ("Moodle", "2002"),
        ("Moodle", "1001"),
        ("Moodle", "1002"),
        ("Moodle", "1003"),
        ("Moodle", "1004"),
        ("Moodle", "zed"),
        ("Moodle", "2003"),
    }
    assert "not on the Canvas roster" in by["Canvas", "1003"]["reason"]
    assert by["Canvas", "1003"]["name"] == "'=HYPERLINK(1)"  # the name from the file name, escaped
    assert "not sent: a notebook was submitted and is not graded yet" in by["Canvas", "1004"]["reason"]
    assert "no Canvas id" in by["Canvas", "zed"]["reason"] and float(by["Canvas", "zed"]["score"]) == 7.0
    assert "on the Canvas roster, no submission" in by["Canvas", "1005"]["reason"]
    assert "no 'Email address'" in by["Moodle", "2002"]["reason"] and by["Moodle", "2002"]["name"] == "'+Bo Chu"
    assert "on the Moodle roster, no submission" in by["Moodle", "2003"]["reason"]
    # every graded student is in an LMS file or listed for that LMS
    scores = expected_scores(root)
    canvas = {r["ID"] for r in read_csv(root / "exports" / "canvas_grades.csv")[1:]}
    for student in scores:
        assert (student in canvas) != (("Canvas", student) in by)
    # and the console says it too
    said = " ".join(proc.stdout.split())
    assert "2 student(s) with a grade in the canvas import file" in said
    assert "1 student(s) with a grade in the moodle import file" in said
    for who in ("1003", "1004", "1005", "zed", "2002", "2003"):
        assert who in said


def test_a_roster_that_cannot_be_read_is_an_error_and_the_other_exports_stay(lms_course, tmp_path):
    root, _ = lms_course
    proc = spamkit(root, "export", "--LmsExport.canvas_roster=lms/missing.csv")
    assert proc.returncode == 1
    said = " ".join(proc.stdout.split())
    assert "error: no Canvas file: cannot read the Canvas roster" in said
    assert (root / "exports" / "grades.csv").is_file() and (root / "exports" / "moodle_grades.csv").is_file()
    bad = tmp_path / "bad.csv"
    bad.write_text("Name,Score\nx,1\n")
    with pytest.raises(LmsExportError, match="no column 'Student', 'ID'"):
        lms_export.read_canvas_roster(bad)
    ragged = tmp_path / "ragged.csv"  # a row with a cell more than the header
    ragged.write_text('Student,ID,SIS User ID\n"Doe, Jane",1001,S1,extra\n')
    assert lms_export.read_canvas_roster(ragged)[0]["1001"]["SIS User ID"] == "S1"


def test_moodle_ids_without_a_roster_are_listed_not_guessed(lms_course):
    root, _ = lms_course
    proc = spamkit(root, "export", "--LmsExport.moodle_roster=")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "note: no Moodle file" in " ".join(proc.stdout.split())
    assert not (root / "exports" / "moodle_grades.csv").exists()  # the earlier export's file, old grades, is gone
    unlisted = read_csv(root / "exports" / "lms_unlisted.csv")
    assert {(r["student_id"], r["reason"]) for r in unlisted if r["lms"] == "Moodle"} == {
        ("2001", "no Moodle roster (LmsExport.moodle_roster)"),
        ("2002", "no Moodle roster (LmsExport.moodle_roster)"),
    }
    spamkit(root, "export")  # as the other tests expect it


def test_conflicting_ids_are_never_exported():
    """Two Canvas ids for one student, or one Canvas id for two students: listed, not guessed."""
    ids = {
        "amy": {"canvas": {"id": "1", "other_ids": ["2"]}},
        "bob": {"canvas": {"id": "3"}},
        "bo": {"canvas": {"id": "3"}},
        "cat": {"canvas": {"id": "4"}},
    }
    grades = {"amy": 1.0, "bob": 2.0, "bo": 3.0, "cat": 4.0}
    match = lms_export.match_students("canvas", grades, ids, None, "Student")
    assert [m.student for m in match.rows] == ["cat"]
    reasons = {u.student: u.reason for u in match.unlisted}
    assert "several Canvas ids" in reasons["amy"]
    assert "collected for several students" in reasons["bob"] and "collected for several students" in reasons["bo"]


def test_recording_ids_keeps_a_conflict(tmp_path):
    lms_ids.record(tmp_path, ASSIGNMENT, "amy", "canvas", "1", "amy")
    lms_ids.record(tmp_path, ASSIGNMENT, "amy", "canvas", "1", "amy")
    assert lms_ids.read_ids(tmp_path, ASSIGNMENT) == {"amy": {"canvas": {"id": "1", "name": "amy", "file": ""}}}
    lms_ids.record(tmp_path, ASSIGNMENT, "amy", "canvas", "2", "amy")
    assert lms_ids.read_ids(tmp_path, ASSIGNMENT)["amy"]["canvas"]["other_ids"] == ["1"]
    assert lms_ids.lms_ids_of({"student_id": "jdoe", "canvas_id": "77"}, "custom") == {"canvas": "77"}
    assert lms_ids.lms_ids_of({"student_id": "55"}, "moodle") == {"moodle": "55"}
    assert lms_ids.lms_ids_of({"student_id": "jdoe"}, "custom") == {}


@pytest.mark.parametrize(
    "value, cell",
    [
        ("=1+1", "'=1+1"),
        ("+x", "'+x"),
        ("-x", "'-x"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Doe, Jane", "Doe, Jane"),
        ("", ""),
        (None, ""),
        (12345, "12345"),
    ],
)
def test_text_cells_never_start_a_formula(value, cell):
    assert csv_cell(value) == cell


def test_number_cells_are_exact():
    assert [number_cell(x) for x in (24.5, 20.0, 0.0, 1 / 3, None)] == ["24.5", "20", "0", repr(1 / 3), ""]
    assert float(number_cell(1 / 3)) == 1 / 3


def test_no_lms_no_lms_files(tmp_path):
    """A course that never saw an LMS download and has no roster gets no LMS files (and no noise)."""

    class FakeCourse:
        root = tmp_path
        assignment = ASSIGNMENT
        config = Config()

    assert lms_export.export_lms(FakeCourse(), tmp_path / "exports") == lms_export.LmsFiles()
    assert not (tmp_path / "exports").exists()


# --- direct upload to Canvas (spamkit export --upload) -------------------------------


class FakeCanvas(http.server.BaseHTTPRequestHandler):
    """Answers like Canvas' REST API for the three calls of an upload (shapes from Canvas' API docs):

    GET  /api/v1/courses/:id                                   -> Course {"id", "name", ...}
    GET  /api/v1/courses/:id/assignments/:id                   -> Assignment {"id", "course_id", "points_possible", ...}
    POST /api/v1/courses/:id/assignments/:id/submissions/update_grades
         form: grade_data[<user id>][posted_grade]=<points>    -> Progress {"id", "workflow_state": "queued", "url", ...}
    GET  /api/v1/progress/:id                                  -> Progress {"workflow_state": "completed", ...}
    """

    points_possible = 25.0
    requests: list = []

    def log_message(self, *args):  # quiet
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        FakeCanvas.requests.append(("GET", self.path, self.headers.get("Authorization"), None))
        if self.path.rstrip("?") == "/api/v1/courses/77":
            return self._answer(200, {"id": 77, "name": "Deep learning", "course_code": "DL"})
        if self.path.rstrip("?") == "/api/v1/courses/77/assignments/12345":
            return self._answer(
                200, {"id": 12345, "course_id": 77, "name": "Spam lab", "points_possible": FakeCanvas.points_possible}
            )
        if self.path.rstrip("?") == "/api/v1/progress/9":
            return self._answer(
                200,
                {
                    "id": 9,
                    "workflow_state": "completed",
                    "completion": 100.0,
                    "tag": "submissions_update",
                    "message": None,
                },
            )
        return self._answer(404, {"errors": [{"message": "The specified resource does not exist."}]})

    def do_POST(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        FakeCanvas.requests.append(("POST", self.path, self.headers.get("Authorization"), form))
        if self.path == "/api/v1/courses/77/assignments/12345/submissions/update_grades":
            return self._answer(
                200,
                {
                    "id": 9,
                    "workflow_state": "queued",
                    "completion": 0,
                    "tag": "submissions_update",
                    "url": f"http://{self.headers['Host']}/api/v1/progress/9",
                },
            )
        return self._answer(404, {"errors": [{"message": "The specified resource does not exist."}]})


@pytest.fixture
def fake_canvas():
    FakeCanvas.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeCanvas)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def upload(root: Path, url: str, token: str = "secret-token") -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            *SPAMKIT,
            "export",
            "--upload",
            "--no-progress",
            f"--LmsExport.canvas_url={url}",
            "--LmsExport.canvas_course_id=77",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env=course_env({"CANVAS_API_TOKEN": token} if token else {}),
    )


def test_upload_sends_the_canvas_file_rows(lms_course, fake_canvas):
    root, _ = lms_course
    proc = upload(root, fake_canvas)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 grade(s) uploaded to Canvas assignment 12345 of course 77" in " ".join(proc.stdout.split())
    posts = [r for r in FakeCanvas.requests if r[0] == "POST"]
    assert len(posts) == 1
    _, path, auth, form = posts[0]
    assert auth == "Bearer secret-token"
    csv_rows = read_csv(root / "exports" / "canvas_grades.csv")[1:]
    assert form == {f"grade_data[{r['ID']}][posted_grade]": [r[CANVAS_COLUMN]] for r in csv_rows}
    assert {k: float(v[0]) for k, v in form.items()} == {
        "grade_data[1001][posted_grade]": 24.5,
        "grade_data[1002][posted_grade]": 7.5,
    }
    assert [r[1] for r in FakeCanvas.requests if r[0] == "GET"][-1].startswith("/api/v1/progress/9")


def test_upload_refuses_another_scale_and_needs_a_token(lms_course, fake_canvas):
    root, _ = lms_course
    FakeCanvas.points_possible = 100.0
    try:
        proc = upload(root, fake_canvas)
    finally:
        FakeCanvas.points_possible = 25.0
    assert proc.returncode == 1
    assert "has 100 points possible, the lab 25: nothing uploaded" in " ".join(proc.stdout.split())
    assert not [r for r in FakeCanvas.requests if r[0] == "POST"]
    FakeCanvas.requests = []
    proc = upload(root, fake_canvas, token="")
    assert proc.returncode == 1 and "CANVAS_API_TOKEN" in proc.stdout
    assert FakeCanvas.requests == []
