"""A real PostgreSQL gradebook (``KIT_DB_URL``): batch, kill and resume, two graders, exports.

One throw-away server (``pg_server``) and one small class graded into it,
shared by every test here: two real notebooks, one collected from a Canvas
download and one from a Moodle download. The batch is started, a second
``spamkit grade`` in the same course folder and a third in another course
folder on the same database are started while it runs (both must be
refused), then the first is killed with SIGKILL once one result landed and
run again. SQLite stays the default: every other test grades into SQLite.
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from kit_testing import (
    ASSIGNMENT,
    REPO,
    SPAMKIT,
    course_env,
    events,
    kill_batch,
    make_course,
    read_csv,
    start_batch,
    summary,
    variant,
    wait_for_event,
    write_csv,
)
from nbgrader.api import Gradebook, SubmittedAssignment
from pg_server import PostgresServer, find_bindir

CANVAS_COLUMN = "Spam lab (4242)"
STUDENTS = {"1001": ("canvas", "reference"), "2002": ("moodle", "wrong-loss")}


@pytest.fixture(scope="module")
def pg_server():
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL not found (no initdb/pg_ctl on PATH or in /usr/lib/postgresql/*/bin): "
            "install the Debian package postgresql, as ./kit.sh test does"
        )
    server = PostgresServer(bindir).start()
    try:
        yield server
    finally:
        server.stop()


def spamkit(root: Path, env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*SPAMKIT, *args, "--no-progress"], cwd=root, env=course_env(env), capture_output=True, text=True, timeout=1800
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"spamkit {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def pg_class(pg_server, tmp_path_factory):
    where = tmp_path_factory.mktemp("pg")
    env = {"KIT_DB_URL": pg_server.create_database("gradebook")}
    root = make_course(where / "course", db_url=env["KIT_DB_URL"])
    other = where / "other-course"  # a second grader's course folder on the same gradebook
    other.mkdir()
    for name in ("course_config.py", "nbgrader_config.py"):
        (other / name).write_bytes((REPO / name).read_bytes())

    # in through the LMS intake: Canvas user 1001 and Moodle participant 2002
    names = {
        "canvas": "doejane_1001_555001_spam_transformer.ipynb",
        "moodle": "Bo Roe_2002_assignsubmission_file_spam_transformer.ipynb",
    }
    for lms, name in STUDENTS.values():
        archive = where / f"{lms}.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.writestr(names[lms], nbformat.writes(variant(root, name)))
        spamkit(root, env, "collect", "--zip", str(archive), "--lms", lms)
    write_csv(
        root / "lms" / "canvas.csv",
        [
            ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", CANVAS_COLUMN],
            ["    Points Possible", "", "", "", "", "25"],
            ["Doe, Jane", "1001", "S1", "jdoe", "A", ""],
            ["Absent, Al", "1003", "S3", "aal", "A", ""],
        ],
    )
    write_csv(
        root / "lms" / "moodle.csv",
        [
            ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade"],
            ["Participant 2002", "Bo Roe", "bo@example.edu", "Submitted for grading", "", "25.00"],
        ],
    )
    with open(root / "course_config.py", "a") as fh:
        fh.write(
            f'\nc.LmsExport.canvas_roster = "lms/canvas.csv"\nc.LmsExport.canvas_assignment = "{CANVAS_COLUMN}"\n'
            'c.LmsExport.moodle_roster = "lms/moodle.csv"\n'
        )

    first = start_batch(root, env)
    try:
        wait_for_event(root, "submitted", first)  # logged inside the batch's locks
        rivals = {
            name: subprocess.Popen(
                [*SPAMKIT, "grade", "--no-progress"],
                cwd=folder,
                env=course_env(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, folder in (("same folder", root), ("other folder", other))
        }
        refused = {name: (p.wait(timeout=600), *p.communicate()) for name, p in rivals.items()}
        first_alive_after_rivals = first.poll() is None
        wait_for_event(root, "executed", first)
    finally:
        kill_batch(first)
    executed_before = [e["student"] for e in events(root) if e["event"] == "executed"]
    stored_before = {p.name: p.read_bytes() for p in (root / ".kit" / "store").glob("*.json")}
    resumed = spamkit(root, env, "grade", "--workers", "1")
    exported = spamkit(root, env, "export")
    return SimpleNamespace(
        root=root,
        other=other,
        url=env["KIT_DB_URL"],
        refused=refused,
        first_alive_after_rivals=first_alive_after_rivals,
        executed_before=executed_before,
        stored_before=stored_before,
        resumed=resumed,
        exported=exported,
    )


def test_second_batch_is_refused_by_the_course_lock_and_the_database_lock(pg_class):
    assert pg_class.first_alive_after_rivals  # the rivals ran while the first batch held its locks
    code, out, err = pg_class.refused["same folder"]
    assert code == 3, out + err
    assert "another batch is grading this course" in " ".join(out.split())
    code, out, err = pg_class.refused["other folder"]  # its own folder's file lock is free: the database refuses
    said = " ".join(out.split())
    assert code == 3, out + err
    assert f"another batch is grading spam-transformer-lab/{ASSIGNMENT} in the gradebook database" in said
    assert "held by spamkit grade" in said
    assert "Traceback" not in out + err
    assert not (pg_class.other / ".kit" / "results").exists()  # nothing graded there


def test_killed_batch_resumes_each_student_graded_once(pg_class):
    assert len(pg_class.executed_before) == 1  # killed with one result in, one in flight
    executed = [e["student"] for e in events(pg_class.root) if e["event"] == "executed"]
    assert sorted(executed) == sorted(STUDENTS)  # each notebook ran exactly once overall
    for name, data in pg_class.stored_before.items():
        assert (pg_class.root / ".kit" / "store" / name).read_bytes() == data
    with Gradebook(pg_class.url) as gb:
        counts = {
            s.id: gb.db.query(SubmittedAssignment).filter(SubmittedAssignment.student_id == s.id).count()
            for s in gb.students
        }
    assert counts == {student: 1 for student in STUDENTS}
    assert "the gradebook is postgresql+psycopg://" in " ".join(pg_class.resumed.stdout.split())
    assert not (pg_class.root / "gradebook.db").exists()  # nothing went to SQLite


def test_gradebook_holds_the_kits_results_per_cell(pg_class):
    with Gradebook(pg_class.url) as gb:
        for student in STUDENTS:
            s = summary(pg_class.root, student)
            assert s["status"] == "ok" and s["sandboxed"] and s["gradebook_key"] == s["key"]
            grades = {
                g.name: g.auto_score
                for g in gb.find_submission(ASSIGNMENT, student).notebooks[0].grades
                if g.cell.cell_type == "code"
            }
            per_cell: dict[str, float] = {}
            for check in s["checks"]:
                per_cell[check["cell"]] = per_cell.get(check["cell"], 0.0) + check["score"]
            assert grades == pytest.approx(per_cell)
            assert sum(grades.values()) == pytest.approx(s["score"])
    assert summary(pg_class.root, "2002")["score"] < summary(pg_class.root, "1001")["score"]  # wrong loss


def test_exports_equal_the_postgres_gradebook(pg_class):
    root = pg_class.root
    with Gradebook(pg_class.url) as gb:
        scores = {
            s: gb.find_submission(ASSIGNMENT, s).score - gb.find_submission(ASSIGNMENT, s).late_submission_penalty
            for s in STUDENTS
        }
    grades = {r["student_id"]: float(r["score"]) for r in read_csv(root / "exports" / "grades.csv")}
    assert grades == pytest.approx(scores)
    canvas = read_csv(root / "exports" / "canvas_grades.csv")
    assert [(r["Student"], r["ID"], r["SIS Login ID"]) for r in canvas] == [
        ("    Points Possible", "", ""),
        ("Doe, Jane", "1001", "jdoe"),
    ]
    assert float(canvas[1][CANVAS_COLUMN]) == grades["1001"]
    moodle = read_csv(root / "exports" / "moodle_grades.csv")
    assert [(r["Email address"], r["Full name"], float(r[ASSIGNMENT])) for r in moodle] == [
        ("bo@example.edu", "Bo Roe", grades["2002"])
    ]
    unlisted = {
        (r["lms"], r["student_id"] or r["lms_id"]): r["reason"] for r in read_csv(root / "exports" / "lms_unlisted.csv")
    }
    assert set(unlisted) == {("Canvas", "2002"), ("Canvas", "1003"), ("Moodle", "1001")}
    assert "on the Canvas roster, no submission" in unlisted["Canvas", "1003"]
