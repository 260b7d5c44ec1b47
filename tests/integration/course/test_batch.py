"""Batch grading: same key as nbgrader's path, real Dask workers, kill and resume.

The slow tests run real submissions (sandboxed notebook + hidden checks) on
real Dask processes: a scheduler and two workers started here on 127.0.0.1,
and ``spamkit grade`` killed with SIGKILL halfway and started again.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
from pathlib import Path

import nbformat
import pytest
from kit_testing import (
    ASSIGNMENT,
    SPAMKIT,
    autograded_scores,
    course_env,
    events,
    kill_batch,
    make_course,
    nbgrader,
    open_course,
    spamkit,
    start_batch,
    submissions_in_gradebook,
    submit,
    summary,
    variant,
    wait_for_event,
)
from nbgrader.api import Gradebook

from autograder.course import autograde
from autograder.course.gradebook import GradebookWriter
from autograder.course.prepare import Sanitizer
from autograder.course.store import ResultStore
from autograder.model import GradingResult, Status

# --- the key, the hand-off to nbgrader, students without a notebook: no notebook runs ---------------------

FAKE_CHECKS = [
    {
        "id": "fake_compile",
        "cell": "test_compile",
        "name": "fake",
        "points": 5.0,
        "passed": True,
        "score": 5.0,
        "message": "",
    },
    {
        "id": "fake_fit",
        "cell": "test_fit",
        "name": "fake",
        "points": 9.0,
        "passed": False,
        "score": 0.0,
        "message": "stored, not run",
    },
    {
        "id": "fake_plot",
        "cell": "test_plot",
        "name": "fake",
        "points": 6.0,
        "passed": False,
        "score": 3.0,
        "message": "stored, not run",
    },
]


def test_precomputed_key_is_the_key_grade_submission_computes(tmp_path, monkeypatch):
    """What the batch computes ahead is what nbgrader autograde then looks up: no work twice.

    Plain ``nbgrader autograde`` builds the job from the course's config; the batch's own autograde
    (GradebookWriter) hands GradeSubmission the job it graded with, and builds none.
    """
    root = make_course(tmp_path / "course")
    nb = variant(root, "reference")
    for cell in nb.cells:  # things nbgrader's sanitize step changes: outputs, an edited test cell
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_compile":
            cell.source = "pass  # the student emptied the self-check"
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="old output\n")]
    nb.metadata["kernelspec"] = {"name": "something-else", "display_name": "x", "language": "python"}
    folder = submit(root, "alice", nb).parent
    (folder / "notes.txt").write_text("my own notes\n")
    (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC\n")

    course = open_course(root)
    entry = next(e for e in course.entries() if e.student == "alice")
    prepared = Sanitizer(course).prepare(entry)
    assert "notes.txt" in prepared.submission.files  # the student's own file runs with the notebook...
    assert "timestamp.txt" not in prepared.submission.files  # ...nbgrader's record of when it came does not
    sanitized = nbformat.reads(prepared.submission.nb_json, as_version=4)
    test_cell = next(c for c in sanitized.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_compile")
    assert "assert model.compiled" in test_cell.source  # OverwriteCells restored it
    assert all(not c.get("outputs") for c in sanitized.cells if c.cell_type == "code")  # ClearOutput

    # A result stored under the precomputed key; autograde must use it, not run the notebook.
    fake = {
        "version": 1,
        "status": "ok",
        "message": "",
        "sandboxed": True,
        "seconds": 0.5,
        "peak_rss_mb": 1.0,
        "capture_errors": [],
        "execute_seconds": 0.4,
        "check_seconds": 0.1,
        "executed": None,
        "checks": FAKE_CHECKS,
    }
    ResultStore(root).put(prepared.key, GradingResult.from_dict(fake))
    nbgrader(root, "autograde", ASSIGNMENT, "--student", "alice", "--force")

    assert summary(root, "alice")["key"] == prepared.key
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        grades = {g.name: g.auto_score for g in gb.find_submission(ASSIGNMENT, "alice").notebooks[0].grades}
    assert (grades["test_compile"], grades["test_fit"], grades["test_plot"]) == (5.0, 0.0, 3.0)

    # The batch's own autograde, in this process: the job goes in the resources, none is built.
    def no_job(*args):
        raise AssertionError("GradeSubmission built a job although the batch handed it one")

    monkeypatch.setattr(autograde, "make_job", no_job)
    row = GradebookWriter(course).write(prepared, force=True, executed=False)
    assert (row.status, row.score, row.run_status) == (Status.GRADED, 8.0, Status.OK)
    assert summary(root, "alice")["gradebook_key"] == prepared.key

    # a changed submission has another key; an unchanged one keeps its key
    assert Sanitizer(course).prepare(entry).key == prepared.key
    (folder / "notes.txt").write_text("changed\n")
    assert Sanitizer(course).prepare(entry).key != prepared.key


def test_students_without_a_gradable_notebook_do_not_stop_the_batch(tmp_path):
    """Damaged grading metadata, an empty file, an unknown id: each reported, nothing run, exit 0."""
    root = make_course(tmp_path / "course")
    nb = variant(root, "reference")
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_fit":
            cell.metadata["nbgrader"]["schema_version"] = 99  # from a newer nbgrader than this course's
    submit(root, "eve", nb)
    submit(root, "frank", b"")
    proc = spamkit(root, "grade", "--student", "eve", "--student", "frank", "--student", "nobody")
    assert "0 notebook(s) run now" in proc.stdout
    assert summary(root, "eve")["status"] == "invalid" and "nbgrader cannot sanitize" in summary(root, "eve")["message"]
    assert summary(root, "frank")["status"] == Status.EMPTY
    assert "unknown student" in proc.stdout
    assert not (root / ".kit" / "results" / ASSIGNMENT / "nobody.json").exists()
    assert set(submissions_in_gradebook(root)) == {"eve", "frank"}  # on the roster, no grades

    with open_course(root).lock():  # a second batch on the same course waits its turn
        busy = spamkit(root, "grade", check=False)
    assert busy.returncode == 3 and "another batch" in busy.stdout


# --- the batch's gradebook session writes what nbgrader's own autograde writes -------------------------

DUE, LATE, ON_TIME = "2026-11-20 17:00:00 UTC", "2026-11-22 05:00:00 UTC", "2026-11-20 12:00:00 UTC"


def stored(checks: list[dict], scale: float) -> GradingResult:
    return GradingResult.from_dict(
        {
            "version": 1,
            "status": "ok",
            "message": "",
            "sandboxed": True,
            "seconds": 0.5,
            "peak_rss_mb": 1.0,
            "capture_errors": [],
            "execute_seconds": 0.4,
            "check_seconds": 0.1,
            "executed": None,
            "checks": [{**c, "score": min(c["points"], c["score"] * scale)} for c in checks],
        }
    )


def class_with_stored_results(root: Path) -> dict[str, str]:
    """A course with a due date and five students whose results are in the store (nothing runs): on time, late,
    no timestamp, an edited test cell with a file of their own and old outputs, an unanswered analysis."""
    make_course(root)
    with open(root / "course_config.py", "a") as fh:
        fh.write(f'\nc.LateWork.due_date = "{DUE}"\n')
    edited = variant(root, "wrong-loss")
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_compile":
            cell.source = "pass  # the student emptied the self-check"
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="old output\n")]
    unanswered = variant(root, "reference")
    for cell in unanswered.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "analysis":
            cell.source = "YOUR ANSWER HERE"
    timestamps = {"ann": ON_TIME, "ben": LATE, "dan": LATE}
    notebooks = {
        "ann": variant(root, "reference"),
        "ben": variant(root, "no-validation"),
        "cid": variant(root, "broken"),
        "dan": edited,
        "eve": unanswered,
    }
    for student, nb in notebooks.items():
        folder = submit(root, student, nb).parent
        if student in timestamps:
            (folder / "timestamp.txt").write_text(timestamps[student] + "\n")
    (root / "submitted" / "dan" / ASSIGNMENT / "notes.txt").write_text("my own notes\n")
    course = open_course(root)
    sanitizer = Sanitizer(course)
    keys = {}
    for i, entry in enumerate(course.entries()):
        prepared = sanitizer.prepare(entry)
        course.store.put(prepared.key, stored(FAKE_CHECKS, scale=0.5 + 0.25 * i))
        keys[entry.student] = prepared.key
    return keys


def gradebook_rows(root: Path) -> dict:
    """Every row nbgrader keeps of each submission, and the autograded folder (names, modes, bytes)."""
    rows = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        for student in gb.students:
            try:
                sub = gb.find_submission(ASSIGNMENT, student.id)
            except Exception:  # noqa: BLE001 - no submission: nothing to compare
                continue
            nb = sub.notebooks[0]
            folder = root / "autograded" / student.id / ASSIGNMENT
            rows[student.id] = {
                "timestamp": str(sub.timestamp),
                "seconds_late": sub.total_seconds_late,
                "penalty": nb.late_submission_penalty,
                "score": sub.score,
                "needs_manual_grade": sub.needs_manual_grade,
                "grades": {
                    g.name: (g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade) for g in nb.grades
                },
                "comments": {c.name: (c.auto_comment, c.manual_comment) for c in nb.comments},
                "files": {
                    str(p.relative_to(folder)): (
                        oct(p.stat().st_mode & 0o777),
                        hashlib.sha256(p.read_bytes()).hexdigest(),
                    )
                    for p in sorted(folder.rglob("*"))
                    if p.is_file()
                },
            }
    return rows


def grade_all(root: Path, *, in_session: bool, force: bool) -> list:
    course = open_course(root)
    writer, rows = GradebookWriter(course), []
    with writer.session() if in_session else contextlib.nullcontext() as gradebook:
        sanitizer = Sanitizer(course, gradebook)
        for entry in course.entries():
            p = sanitizer.prepare(entry)
            rows.append(writer.write(p, force=force, executed=False))
    return rows


def test_the_batch_session_writes_what_nbgraders_own_autograde_writes(tmp_path):
    """Row by row: scores, manual-grade flags, comments, timestamps, late penalties, the autograded files."""
    keys = class_with_stored_results(tmp_path / "own")
    assert class_with_stored_results(tmp_path / "session") == keys  # the same class, twice
    own = grade_all(tmp_path / "own", in_session=False, force=True)
    ran = grade_all(tmp_path / "session", in_session=True, force=True)
    assert [(r.student, r.status, r.score) for r in ran] == [(r.student, r.status, r.score) for r in own]
    assert {r.status for r in ran} == {Status.GRADED}
    first = gradebook_rows(tmp_path / "own")
    assert first == gradebook_rows(tmp_path / "session")
    assert first["ben"]["penalty"] > 0 and first["dan"]["penalty"] > 0 and first["ann"]["penalty"] is None
    assert first["eve"]["comments"]["analysis"][0] == "No response."
    assert "notes.txt" in first["dan"]["files"] and "timestamp.txt" in first["ann"]["files"]
    for root in (tmp_path / "own", tmp_path / "session"):
        assert {s: summary(root, s)["gradebook_key"] for s in keys} == keys

    # A grader gave a manual score; grading again keeps it and flags the cell for review, both ways.
    for root in (tmp_path / "own", tmp_path / "session"):
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            gb.find_grade("test_compile", ASSIGNMENT, ASSIGNMENT, "ann").manual_score = 1.0
            gb.db.commit()
    grade_all(tmp_path / "own", in_session=False, force=True)
    grade_all(tmp_path / "session", in_session=True, force=True)
    again = gradebook_rows(tmp_path / "own")
    assert again == gradebook_rows(tmp_path / "session")
    assert again["ann"]["grades"]["test_compile"][1:] == (1.0, None, True)
    up_to_date = grade_all(tmp_path / "session", in_session=True, force=False)
    assert {r.status for r in up_to_date} == {Status.UP_TO_DATE}


def test_a_batch_killed_between_commits_resumes_with_nothing_lost_or_doubled(tmp_path):
    """Gradebook writes commit every 3 students: a kill loses the uncommitted ones, the next batch writes them.

    The first batch prepares in a process of its own (BatchClient.prepare_processes), the second in the client.
    """
    root = tmp_path / "course"
    keys = class_with_stored_results(root)
    env = {"COLUMNS": "240"}
    first = subprocess.Popen(
        [
            *SPAMKIT,
            "grade",
            "--no-progress",
            "--BatchClient.chunk_students=3",
            "--BatchClient.chunk_seconds=600",
            "--BatchClient.prepare_processes=1",
        ],
        cwd=root,
        env=course_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_event(root, "autograded", first, limit=600)
    finally:
        kill_batch(first)
    marked = {e["student"] for e in events(root) if e["event"] == "autograded"}
    assert marked and len(marked) < len(keys)
    committed = set(submissions_in_gradebook(root))
    assert marked <= committed  # marked done only once committed

    spamkit(root, "grade", "--BatchClient.chunk_students=3", "--BatchClient.prepare_processes=0", env=env)
    assert submissions_in_gradebook(root) == {s: 1 for s in keys}
    log = events(root)
    assert not [e for e in log if e["event"] == "executed"]  # every result came from the store
    again = [e["student"] for e in log if e["event"] == "autograded"][len(marked) :]
    assert sorted(again) == sorted(set(keys) - marked)  # the resumed batch wrote each of the others once
    for student, key in keys.items():
        s = summary(root, student)
        assert s["gradebook_key"] == key and s["score"] == pytest.approx(autograded_scores(root, student))


# --- slow: real grading on real Dask processes ---------------------------------


def test_batch_on_external_dask_workers(graded_course, dask_cluster):
    root, proc = graded_course
    _, workers = dask_cluster
    log = events(root)
    executed = [e for e in log if e["event"] == "executed"]
    assert sorted(e["student"] for e in executed) == ["alice", "bob"]
    assert {e["worker"] for e in executed} == workers  # one notebook on each worker process

    alice, bob, carol, dave = (summary(root, s) for s in ("alice", "bob", "carol", "dave"))
    assert alice["status"] == "ok" and alice["sandboxed"]
    assert alice["gradebook_key"] == alice["key"]
    for name, s in (("alice", alice), ("bob", bob)):
        assert s["score"] == pytest.approx(autograded_scores(root, name))
        assert s["metrics"]["val_auc_regraded"] > 0.5
    assert bob["score"] < alice["score"]  # wrong loss loses the loss and AUC checks
    assert carol["status"] == Status.UNREADABLE and carol["score"] == 0
    assert dave["status"] == Status.NO_SUBMISSION and dave["score"] == 0
    assert submissions_in_gradebook(root) == {"alice": 1, "bob": 1, "carol": 0, "dave": 0}
    for student in ("alice", "bob", "carol", "dave"):
        assert student in proc.stdout
    assert "corrupt notebook" in proc.stdout and "no submission" in proc.stdout

    # Again: nothing changed, so nothing runs and no worker is needed.
    again = spamkit(root, "grade", "--scheduler", "tcp://127.0.0.1:9")  # nothing listens there
    assert "up to date" in again.stdout
    assert [e for e in events(root) if e["event"] == "executed"] == executed


def test_killed_batch_resumes_without_losing_or_doubling(tmp_path):
    root = make_course(tmp_path / "course")
    students = {"ann": "reference", "ben": "wrong-loss", "cid": "no-validation"}
    for student, name in students.items():
        submit(root, student, variant(root, name))
    store = root / ".kit" / "store"

    first = start_batch(root)
    try:
        wait_for_event(root, "executed", first)
    finally:
        kill_batch(first)
    done_before = {e["student"] for e in events(root) if e["event"] == "executed"}
    assert 1 <= len(done_before) < len(students)
    stored_before = {p.name: p.read_bytes() for p in store.glob("*.json")}

    spamkit(root, "grade", "--workers", "1")  # the same workers: they fix each sandbox's threads, part of the key

    log = events(root)
    executed = [e["student"] for e in log if e["event"] == "executed"]
    assert sorted(executed) == sorted(students)  # every student's notebook ran exactly once overall
    for name, data in stored_before.items():
        assert (store / name).read_bytes() == data  # finished results were not redone
    assert submissions_in_gradebook(root) == {s: 1 for s in students}
    for student in students:
        s = summary(root, student)
        assert s["gradebook_key"] == s["key"]
        assert s["score"] == pytest.approx(autograded_scores(root, student))
