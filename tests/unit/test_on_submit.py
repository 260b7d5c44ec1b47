"""Graded on submit, without a hub: the service's decisions on what arrives in the exchange, and the students'
submit that refuses a submission over the daily cap (autograder/hub/on_submit.py, grading_service.py)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.abc.exchange import ExchangeError
from nbgrader.utils import notebook_hash, parse_utc
from traitlets.config import Config

from autograder.hub import grading_service
from autograder.hub.on_submit import CappedSubmit, OnSubmit, day_of, status_name

COURSE, ASSIGNMENT = "course101", "lab"
FMT = "%Y-%m-%d %H:%M:%S.%f UTC"


def stamp(offset: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset)).strftime(FMT)


def make_entry(folder: Path, name: str, secret: str, body: str = "{}") -> Path:
    entry = folder / name
    entry.mkdir(parents=True)
    (entry / f"{ASSIGNMENT}.ipynb").write_text(body)
    (entry / "submission_secret.txt").write_text(secret)
    (entry / "timestamp.txt").write_text(name.split("+")[2])
    return entry


class FakeCourse:
    """What the service's intake reads of a course: ids, the submitted folder's timestamp, the kit's folder."""

    def __init__(self, root: Path, collected: dict[str, datetime]):
        self.assignment = ASSIGNMENT
        self.store = SimpleNamespace(root=root / ".kit")
        self._collected = collected
        self.coursedir = SimpleNamespace(course_id=COURSE, get_existing_timestamp=lambda path: collected.get(path))

    def folder(self, step: str, student: str) -> str:
        return student


@pytest.fixture
def exchange(tmp_path, monkeypatch):
    inbound, feedback = tmp_path / "exchange" / COURSE / "inbound", tmp_path / "exchange" / COURSE / "feedback"
    inbound.mkdir(parents=True)
    feedback.mkdir()
    me = os.getuid()
    # ann and ben are this test's own uid; 'eve' exists under another uid
    monkeypatch.setattr(
        grading_service.pwd, "getpwnam", lambda name: SimpleNamespace(pw_uid=me if name in ("ann", "ben") else me + 1)
    )
    return inbound, feedback


def test_intake_decides_each_new_entry(tmp_path, exchange):
    inbound, feedback = exchange
    earlier = stamp(-3600)
    names = {
        "old": f"ann+{ASSIGNMENT}+{earlier}+r0",  # collected by the instructor before
        "first": f"ann+{ASSIGNMENT}+{stamp(-20)}+r1",  # superseded by ann's newer one
        "newest": f"ann+{ASSIGNMENT}+{stamp(-10)}+r2",
        "ben": f"ben+{ASSIGNMENT}+{stamp(-5)}+r3",  # over ben's cap
        "forged": f"eve+{ASSIGNMENT}+{stamp(-1)}+r4",  # named after an account that does not own it
        "other": f"ann+other_lab+{stamp(-1)}+r5",  # another assignment: not this service's
    }
    for key, name in names.items():
        make_entry(inbound, name, secret=f"secret-{key}")
    # a link named after ben, to a folder he owns: not a submission folder of his
    names["link"] = f"ben+{ASSIGNMENT}+{stamp(-2)}+r6"
    (inbound / names["link"]).symlink_to(make_entry(tmp_path / "elsewhere", names["link"], secret="secret-link"))
    course = FakeCourse(tmp_path, {"ann": parse_utc(earlier)})
    service = grading_service.GradingService(tmp_path, str(tmp_path / "exchange"), log=lambda text: None)
    collected = []
    service.collect = lambda course, chosen: collected.extend(chosen)
    settings = OnSubmit(config=Config({"OnSubmit": {"enabled": True, "daily_cap": 1}}))
    now = datetime.now(UTC)
    today = day_of(now, "UTC")
    ledger = {"entries": {f"ben+{ASSIGNMENT}+x+y": {"student": "ben", "state": "graded", "day": today}}}

    service.take_in(course, settings, ledger, inbound, feedback, now)

    state = {key: ledger["entries"].get(name, {}).get("state") for key, name in names.items()}
    assert state == {
        "old": "earlier",
        "first": "superseded",
        "newest": "accepted",
        "ben": "over_cap",
        "forged": "not_theirs",
        "other": None,
        "link": "not_theirs",
    }
    assert collected == [names["newest"]]
    assert ledger["entries"][names["newest"]]["collected"] is True
    # ben's notice is his feedback for that submission (nbgrader's name), with the reason, as HTML text
    notice = feedback / f"{notebook_hash(secret='secret-ben', notebook_id=ASSIGNMENT)}.html"
    assert "at most 1 submission per student per day" in notice.read_text()
    assert oct(notice.stat().st_mode & 0o777) == oct(0o644)

    service.write_statuses(course, ledger, inbound, feedback)
    status = json.loads((feedback / status_name("secret-newest")).read_text())
    assert status == {"state": "accepted", "day": today, "message": ""}
    assert not (feedback / status_name("secret-forged")).exists()


def test_the_notice_escapes_what_students_control(tmp_path, exchange):
    inbound, feedback = exchange
    entry = make_entry(inbound, f"ann+{ASSIGNMENT}+{stamp()}+r", secret="s")
    service = grading_service.GradingService(tmp_path, str(tmp_path / "exchange"), log=lambda text: None)
    service.notice(
        FakeCourse(tmp_path, {}),
        entry,
        feedback,
        "<script>alert(1)</script>",
        "<b>ts</b>",
        "Not graded",
        "why <img src=x onerror=alert(1)>",
    )
    page = (feedback / f"{notebook_hash(secret='s', notebook_id=ASSIGNMENT)}.html").read_text()
    assert "<script>alert" not in page and "<img" not in page and "<b>ts" not in page
    assert "&lt;script&gt;" in page


def test_settings_refuse_an_unknown_time_zone():
    with pytest.raises(Exception, match="not a time zone"):
        OnSubmit(config=Config({"OnSubmit": {"cap_timezone": "Mars/Olympus"}}))
    assert day_of(datetime(2026, 12, 2, 23, 30, tzinfo=UTC), "Europe/Berlin") == "2026-12-03"


def capped_submit(tmp_path: Path, settings: dict | None) -> CappedSubmit:
    root = tmp_path / "exchange"
    (root / COURSE / "feedback").mkdir(parents=True, exist_ok=True)
    if settings is not None:
        (root / COURSE / "on_submit.json").write_text(json.dumps(settings))
    config = Config(
        {
            "Exchange": {"root": str(root), "cache": str(tmp_path / "cache")},
            "CourseDirectory": {"course_id": COURSE, "assignment_id": ASSIGNMENT},
        }
    )
    return CappedSubmit(coursedir=CourseDirectory(config=config), config=config)


def cached(tmp_path: Path, name: str, secret: str, state: str | None, day: str | None = None) -> None:
    make_entry(tmp_path / "cache" / COURSE, name, secret)
    if state is not None:
        (tmp_path / "exchange" / COURSE / "feedback" / status_name(secret)).write_text(
            json.dumps({"state": state, "day": day or day_of(datetime.now(UTC), "UTC")})
        )


def test_the_students_submit_counts_what_the_service_says(tmp_path):
    settings = {"enabled": True, "daily_cap": 2, "cap_timezone": "UTC", "feedback": "now"}
    submit = capped_submit(tmp_path, settings)
    cached(tmp_path, f"ann+{ASSIGNMENT}+{stamp(-30)}", "a", "graded")
    cached(tmp_path, f"ann+{ASSIGNMENT}+{stamp(-20)}", "b", "earlier")  # the instructor's, not counted
    cached(tmp_path, f"ann+{ASSIGNMENT}+{stamp(-15)}", "c", "over_cap")  # refused, not counted
    cached(tmp_path, f"ann+{ASSIGNMENT}+{stamp(-12)}", "d", "graded", day="2001-01-01")  # another day
    submit._check_cap()  # one counted: may submit
    cached(tmp_path, f"ann+{ASSIGNMENT}+{stamp(-5)}", "e", None)  # not seen yet: will count
    with pytest.raises(ExchangeError, match="grades at most 2 submissions per student per day, and 2 of yours"):
        submit._check_cap()


@pytest.mark.parametrize("settings", [None, {"enabled": False, "daily_cap": 1}, {"enabled": True, "daily_cap": 0}])
def test_no_service_or_no_cap_submits_as_nbgrader_does(tmp_path, settings):
    submit = capped_submit(tmp_path, settings)
    for i, secret in enumerate("abc"):
        cached(tmp_path, f"ann+{ASSIGNMENT}+{stamp(-i)}", secret, "graded")
    submit._check_cap()


def test_nbgraders_own_files_are_not_the_students(tmp_path):
    """Each exchange submission has a new submission_secret.txt (nbgrader 0.9.6): it must not make identical code
    look new (the stored result is used) nor reach the sandbox as a student's file."""
    from autograder.grading.submission import student_files

    (tmp_path / f"{ASSIGNMENT}.ipynb").write_text("{}")
    (tmp_path / "timestamp.txt").write_text(stamp())
    (tmp_path / "submission_secret.txt").write_text("0" * 128)
    (tmp_path / "notes.txt").write_text("mine")
    assert student_files(tmp_path, ASSIGNMENT) == {"notes.txt": b"mine"}


class GradingCourse(FakeCourse):
    """A course the service grades and releases through: nbgrader's release_feedback is recorded."""

    def __init__(self, root: Path):
        super().__init__(root, {})
        self.released: list[str] = []
        self.store.summary = lambda assignment, student: None
        self.api = SimpleNamespace(
            release_feedback=lambda assignment, student_id: self.released.append(student_id) or {"success": True}
        )


@pytest.fixture
def after_grading(tmp_path, exchange, monkeypatch):
    """ann graded, ben's grading failed (held back); the batch and nbgrader's feedback stand in."""
    from autograder import api
    from autograder.course import late, publish

    inbound, feedback = exchange
    names = {s: f"{s}+{ASSIGNMENT}+{stamp(-i)}+r" for i, s in enumerate(("ann", "ben"))}
    for student, name in names.items():
        make_entry(inbound, name, secret=f"secret-{student}")
    monkeypatch.setattr(
        api,
        "grade_class",
        lambda course, students: [
            SimpleNamespace(student=s, status="graded" if s == "ann" else "grader error") for s in students
        ],
    )
    monkeypatch.setattr(
        publish,
        "held_back",
        lambda course: {"ben": publish.Held("ben", "grader error", "the grader failed on this submission")},
    )
    monkeypatch.setattr(api, "feedback", lambda course, students: (tmp_path / "feedback", {}))
    due = {"value": ""}
    monkeypatch.setattr(late, "sync_due_date", lambda course: due["value"])
    course = GradingCourse(tmp_path)
    service = grading_service.GradingService(tmp_path, str(tmp_path / "exchange"), log=lambda text: None)
    ledger = {
        "entries": {
            name: {"student": s, "state": "accepted", "day": "d", "timestamp": name.split("+")[2], "released": False}
            for s, name in names.items()
        }
    }
    service.grade(course, ledger)
    return SimpleNamespace(service=service, course=course, ledger=ledger, names=names, due=due, feedback=feedback)


def policy(feedback: str) -> OnSubmit:
    return OnSubmit(config=Config({"OnSubmit": {"enabled": True, "feedback": feedback}}))


def test_a_grader_error_is_held_never_released(after_grading):
    g = after_grading
    entries = g.ledger["entries"]
    assert entries[g.names["ann"]]["state"] == "graded"
    assert entries[g.names["ben"]]["state"] == "held"
    notice = (g.feedback / f"{notebook_hash(secret='secret-ben', notebook_id=ASSIGNMENT)}.html").read_text()
    assert "no grade has been given" in notice and "Score" not in notice
    g.service.release(g.course, policy("now"), g.ledger)
    assert g.course.released == ["ann"]
    assert entries[g.names["ann"]]["released"] and not entries[g.names["ben"]]["released"]


def test_never_and_before_the_due_date_release_nothing(after_grading):
    g = after_grading
    g.service.release(g.course, policy("never"), g.ledger)
    g.service.release(g.course, policy("after_due"), g.ledger)  # no due date: nothing
    g.due["value"] = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    g.service.release(g.course, policy("after_due"), g.ledger)
    assert g.course.released == []
    g.due["value"] = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    g.service.release(g.course, policy("after_due"), g.ledger)
    assert g.course.released == ["ann"]
