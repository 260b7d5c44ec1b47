"""Results out to students (issue 21, LMS parts): late work, no false zero, feedback through Moodle and Canvas.

A small class collected from real Canvas and Moodle downloads (``spamkit collect --zip``), its grades put in
nbgrader's gradebook through nbgrader's API and its late penalties assigned by nbgrader's own
``AssignLatePenalties`` with the course's plugin (course_config.py), as autograde leaves them; the kit's
summaries as a batch leaves them (one grader error). No notebook runs here.

    1001 Canvas, on time          1002 Canvas, late (Canvas' _late_ name, timestamp.txt 1 day 1 hour late)
    1004 Canvas, grader error (the gradebook still holds an earlier grade, and an old autograded notebook)
    2001 Moodle, late             2002 Moodle, submitted, not graded yet
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse
import warnings
import zipfile
from pathlib import Path

import nbformat
import pytest
from kit_testing import ASSIGNMENT, make_course, read_csv, release_notebook, write_csv
from nbgrader.api import Gradebook
from sqlalchemy.exc import SAWarning
from test_lms_export import FakeCanvas, spamkit

from autograder.course.store import ResultStore
from autograder.model import CheckResult, Status, Summary

DUE = "2026-11-20 17:00:00 UTC"
CANVAS_COLUMN = "Spam lab (12345)"
CANVAS_DOWNLOAD = {
    "doejane_1001_900001_spam_transformer.ipynb",
    "roejim_late_1002_900002_spam_transformer.ipynb",
    "kimbo_1004_900004_spam_transformer.ipynb",
}
MOODLE_DOWNLOAD = {
    "Ann Lee_2001_assignsubmission_file_spam_transformer.ipynb",
    "Bo_Chu_2002_assignsubmission_file_spam_transformer.ipynb",
}
MOODLE_WORKSHEET = [
    ["Identifier", "Full name", "Email address", "Maximum Grade"],
    ["Participant 2001", "Ann Lee", "ann@example.edu", "25.00"],
    ["Participant 2002", "Bo Chu", "bo@example.edu", "25.00"],
]
# autograded scores (test_compile, test_fit, test_plot), submission time
GRADED = {
    "1001": ((5.0, 9.0, 6.0), "2026-11-20 16:00:00 UTC"),
    "1002": ((5.0, 9.0, 6.0), "2026-11-21 18:00:00 UTC"),  # 25 h late: 2 started days after 15 min grace
    "1004": ((5.0, 9.0, 6.0), "2026-11-20 10:00:00 UTC"),  # the earlier grade
    "2001": ((5.0, 5.0, 0.0), "2026-11-20 17:10:00 UTC"),
}  # inside the 15 minutes of grace: on time
PENALTY = {"1002": 4.0}  # per_day 10 % (the default) x 2 days of 20 points
CHECKS = [("test_compile", "Compiles"), ("test_fit", "Trains"), ("test_plot", "Plots")]


def summary(scores) -> Summary:
    checks = [
        CheckResult(cid, cid, name, pts, score == pts, score, "" if score == pts else "not yet")
        for (cid, name), pts, score in zip(CHECKS, (5.0, 9.0, 6.0), scores)
    ]
    return Summary(
        Status.OK,
        key="k" + "".join(f"{s:g}" for s in scores),
        score=sum(scores),
        max_score=20.0,
        checks=checks,
        sandboxed=True,
        seconds=3.0,
    )


def assign_late_penalty(root: Path, student: str) -> None:
    """nbgrader's AssignLatePenalties (as autograde runs it) with the course's config, for one student."""
    from nbgrader.preprocessors import AssignLatePenalties

    from autograder.settings import load_course_config

    pre = AssignLatePenalties(config=load_course_config(root))
    pre.preprocess(
        nbformat.v4.new_notebook(),
        {
            "nbgrader": {
                "notebook": ASSIGNMENT,
                "assignment": ASSIGNMENT,
                "student": student,
                "db_url": f"sqlite:///{root / 'gradebook.db'}",
            }
        },
    )


@pytest.fixture(scope="module")
def results_course(tmp_path_factory):
    where = tmp_path_factory.mktemp("results_out")
    root = make_course(where / "course")
    with open(root / "course_config.py", "a") as fh:
        fh.write(
            f'\nc.LateWork.due_date = "{DUE}"\nc.LmsExport.canvas_assignment = "{CANVAS_COLUMN}"\n'
            'c.LmsExport.moodle_roster = "lms/moodle.csv"\n'
        )
    write_csv(root / "lms" / "moodle.csv", MOODLE_WORKSHEET)
    proc = spamkit(root, "release", "--force")  # writes the due date into the gradebook
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nb = nbformat.writes(release_notebook(root)).encode()
    collected = {}
    for name, files in (("canvas", CANVAS_DOWNLOAD), ("moodle", MOODLE_DOWNLOAD)):
        archive = where / f"{name}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for file in files:
                zf.writestr(file, nb)
        collected[name] = spamkit(root, "collect", "--zip", str(archive), "--lms", name)
        assert collected[name].returncode == 0, collected[name].stdout + collected[name].stderr
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        warnings.simplefilter("ignore", SAWarning)
        for student, (auto, when) in GRADED.items():
            (root / "submitted" / student / ASSIGNMENT / "timestamp.txt").write_text(when)
            gb.update_or_create_student(student)
            gb.add_submission(ASSIGNMENT, student, timestamp=when)
            for cell, score in zip(("test_compile", "test_fit", "test_plot"), auto):
                gb.find_grade(cell, ASSIGNMENT, ASSIGNMENT, student).auto_score = score
        gb.db.commit()
    for student in GRADED:
        assign_late_penalty(root, student)
        autograded = root / "autograded" / student / ASSIGNMENT
        autograded.mkdir(parents=True)
        nbformat.write(release_notebook(root), autograded / f"{ASSIGNMENT}.ipynb")
    store = ResultStore(root)
    for student in ("1001", "1002", "2001"):
        store.write_summary(ASSIGNMENT, student, summary(GRADED[student][0]))
    store.write_summary(
        ASSIGNMENT, "1004", Summary.not_graded(Status.GRADER_ERROR, "KilledWorker: worker died", 20.0, [])
    )
    stale = root / "exports" / "gradescope" / "1004" / "results.json"  # an export from before the grader error
    stale.parent.mkdir(parents=True)
    stale.write_text(json.dumps({"score": 0.0}))
    exported = spamkit(root, "export")
    return root, collected, exported


def test_the_late_policy_is_nbgraders_with_the_course_settings(results_course):
    root, collected, _ = results_course
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert str(gb.find_assignment(ASSIGNMENT).duedate) == "2026-11-20 17:00:00"  # from LateWork.due_date
        found = {
            s: (
                gb.find_submission(ASSIGNMENT, s).total_seconds_late,
                gb.find_submission(ASSIGNMENT, s).late_submission_penalty,
            )
            for s in GRADED
        }
    assert found["1002"] == (25 * 3600, 4.0)
    assert found["2001"][0] == 600 and found["2001"][1] == 0.0  # late by 10 minutes: inside the grace
    assert found["1001"] == (0, 0.0)
    # Canvas marked 1002 late; its download gives no time, so collect said a timestamp is needed
    said = " ".join(collected["canvas"].stdout.split())
    assert "marked 1 submission(s) late: 1002" in said and "timestamp.txt" in said


def test_every_export_takes_the_late_penalty(results_course):
    root, _, exported = results_course
    assert exported.returncode == 0, exported.stdout + exported.stderr
    grades = {r["student_id"]: r for r in read_csv(root / "exports" / "grades.csv")}
    assert float(grades["1002"]["late_submission_penalty"]) == 4.0 and float(grades["1002"]["score"]) == 16.0
    checks = {r["student_id"]: r for r in read_csv(root / "exports" / "checks.csv")}
    assert (checks["1002"]["total"], checks["1002"]["late_submission_penalty"], checks["1002"]["score"]) == (
        "20",
        "4",
        "16",
    )
    gradescope = json.loads((root / "exports" / "gradescope" / "1002" / "results.json").read_text())
    assert gradescope["score"] == 16.0 and "after the due date" in gradescope["output"]
    assert json.loads((root / "exports" / "gradescope" / "1001" / "results.json").read_text())["score"] == 20.0
    canvas = {r["ID"]: r[CANVAS_COLUMN] for r in read_csv(root / "exports" / "canvas_grades.csv")[1:]}
    assert canvas == {"1001": "20", "1002": "16"}
    moodle = read_csv(root / "exports" / "moodle_grades.csv")
    assert moodle == [{"Email address": "ann@example.edu", "Full name": "Ann Lee", ASSIGNMENT: "10"}]


def test_a_grader_error_or_ungraded_work_reaches_no_student(results_course):
    root, _, exported = results_course
    # Gradescope: no results.json for the grader error (the stale 0 is gone) nor for the ungraded submission
    assert not (root / "exports" / "gradescope" / "1004" / "results.json").exists()
    assert not (root / "exports" / "gradescope" / "2002").exists()
    # the LMS files leave them out, although the gradebook holds 1004's earlier grade
    unlisted = {(r["lms"], r["student_id"]): r["reason"] for r in read_csv(root / "exports" / "lms_unlisted.csv")}
    assert "not sent: the grader failed on this submission (KilledWorker" in unlisted["Canvas", "1004"]
    assert "earlier grade is not sent" in unlisted["Canvas", "1004"]
    assert "not sent: a notebook was submitted and is not graded yet" in unlisted["Moodle", "2002"]
    held = {r["student_id"]: r for r in read_csv(root / "exports" / "held_back.csv")}
    assert set(held) == {"1004", "2002"}
    assert held["1004"]["status"] == "grader error" and held["2002"]["status"] == "not graded"
    said = " ".join(exported.stdout.split())
    assert "Not sent to the student" in said and "KilledWorker" in said


@pytest.fixture(scope="module")
def feedback_made(results_course):
    root, _, _ = results_course
    proc = spamkit(root, "feedback", "--lms", "moodle")
    return root, proc


def test_feedback_pages_skip_grader_errors(feedback_made):
    root, proc = feedback_made
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pages = sorted(p.relative_to(root / "feedback").parts[0] for p in (root / "feedback").rglob("*.html"))
    assert pages == ["1001", "1002", "2001"]  # 1004's page (from the old grade) is removed
    late = (root / "feedback" / "1002" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "Late submission penalty (Score: -4.0)" in late
    said = " ".join(proc.stdout.split())
    assert "Not sent to the student" in said and "1004" in said and "2002" in said


def test_moodle_feedback_zip_has_moodles_layout(feedback_made):
    root, proc = feedback_made
    with zipfile.ZipFile(root / "exports" / "moodle_feedback.zip") as zf:
        names = zf.namelist()
        assert names == [f"Ann Lee_2001_assignsubmission_file_/{ASSIGNMENT}_feedback.html"]
        page = (root / "feedback" / "2001" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_bytes()
        assert zf.read(names[0]) == page
    # Moodle's importer reads each path part as fullname_participantid_plugintype_pluginname_rest
    folder, file_name = names[0].split("/")
    assert folder.split("_", 4)[1:] == ["2001", "assignsubmission", "file", ""] and not file_name.startswith(".")
    unlisted = {
        r["student_id"]: r["reason"]
        for r in read_csv(root / "exports" / "lms_feedback_unlisted.csv")
        if r["lms"] == "Moodle"
    }
    assert "not graded yet" in unlisted["2002"]
    assert "1 feedback page(s) in" in " ".join(proc.stdout.split())


# --- Canvas: the feedback page as a submission comment -----------------------------


class FakeCanvasComments(FakeCanvas):
    """FakeCanvas plus the calls of a comment with a file (shapes from Canvas' API docs):

    GET  /api/v1/courses/:c/assignments/:a/submissions/:user         -> Submission {"id", "user_id", "assignment_id"}
    POST /api/v1/courses/:c/assignments/:a/submissions/:user/comments/files   form: name, size
         -> {"upload_url", "upload_params"}
    POST <upload_url> (multipart, no token)                          -> File {"id", "url", "display_name", ...}
    PUT  /api/v1/courses/:c/assignments/:a/submissions/:user
         form: comment[text_comment], comment[file_ids][]            -> Submission
    """

    uploads: dict = {}

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/api/v1/courses/77/assignments/12345/submissions/"):
            FakeCanvas.requests.append(("GET", self.path, self.headers.get("Authorization"), None))
            user = path.rsplit("/", 1)[1]
            return self._answer(200, {"id": 5000 + int(user), "user_id": int(user), "assignment_id": 12345})
        return super().do_GET()

    def do_POST(self):
        path = self.path.split("?")[0]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if path.endswith("/comments/files"):
            form = urllib.parse.parse_qs(body.decode())
            FakeCanvas.requests.append(("POST", path, self.headers.get("Authorization"), form))
            user = path.split("/")[-3]
            return self._answer(
                200,
                {
                    "upload_url": f"http://{self.headers['Host']}/files_upload/{user}",
                    "upload_params": {"filename": form["name"][0]},
                },
            )
        if path.startswith("/files_upload/"):
            user = path.rsplit("/", 1)[1]
            FakeCanvas.requests.append(("UPLOAD", path, self.headers.get("Authorization"), None))
            FakeCanvasComments.uploads[user] = body
            return self._answer(
                201,
                {"id": 900 + int(user) % 100, "url": "http://canvas/files/1/download", "display_name": "feedback.html"},
            )
        return self._answer(404, {"errors": [{"message": "The specified resource does not exist."}]})

    def do_PUT(self):
        form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        FakeCanvas.requests.append(("PUT", self.path, self.headers.get("Authorization"), form))
        user = self.path.split("?")[0].rsplit("/", 1)[1]
        return self._answer(200, {"id": 5000 + int(user), "user_id": int(user), "assignment_id": 12345})


@pytest.fixture
def canvas_comments_server():
    FakeCanvas.requests, FakeCanvasComments.uploads = [], {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeCanvasComments)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def canvas_feedback(root: Path, url: str, *extra: str):
    import subprocess
    import sys

    from kit_testing import course_env

    return subprocess.run(
        [
            sys.executable,
            "-m",
            "autograder",
            "feedback",
            "--lms",
            "canvas",
            "--no-progress",
            f"--LmsExport.canvas_url={url}",
            "--LmsExport.canvas_course_id=77",
            *extra,
        ],
        cwd=root,
        env=course_env({"CANVAS_API_TOKEN": "secret-token"}),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_canvas_comments_carry_each_students_page(feedback_made, canvas_comments_server):
    root, _ = feedback_made
    proc = canvas_feedback(root, canvas_comments_server)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 feedback comment(s) posted to Canvas" in " ".join(proc.stdout.split())
    puts = {r[1].split("?")[0].rsplit("/", 1)[1]: r[3] for r in FakeCanvas.requests if r[0] == "PUT"}
    assert set(puts) == {"1001", "1002"}  # never 1004 (grader error)
    for user, form in puts.items():
        assert form["comment[file_ids][]"] == [str(900 + int(user) % 100)]
        assert "Autograded feedback for spam_transformer" in form["comment[text_comment]"][0]
        page = (root / "feedback" / user / ASSIGNMENT / f"{ASSIGNMENT}.html").read_bytes()
        assert page in FakeCanvasComments.uploads[user]  # the page itself went up as the comment's file
    assert "16 / 25 points" in puts["1002"]["comment[text_comment]"][0]  # after the late penalty
    assert all(r[2] == "Bearer secret-token" for r in FakeCanvas.requests if r[0] in ("GET", "POST", "PUT"))
    assert all(r[2] is None for r in FakeCanvas.requests if r[0] == "UPLOAD")  # the token stays with Canvas
    # sent once: an unchanged page is not posted again, --force posts it again
    FakeCanvas.requests = []
    again = canvas_feedback(root, canvas_comments_server)
    assert again.returncode == 0 and not [r for r in FakeCanvas.requests if r[0] == "PUT"]
    assert "2 unchanged" in " ".join(again.stdout.split())
    forced = canvas_feedback(root, canvas_comments_server, "--force")
    assert forced.returncode == 0 and len([r for r in FakeCanvas.requests if r[0] == "PUT"]) == 2
