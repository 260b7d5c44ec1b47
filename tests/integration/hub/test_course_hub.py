"""The course on JupyterHub, in a real browser: one instructor and two students, every step through the web UI.

One hub (``python -m autograder.hub``, what ``./kit.sh hub`` runs) for the module, with real Unix accounts
made from a roster and removed at the end. The instructor releases the lab from formgrader; each student
fetches it in *Assignments*, writes the three exercises (ann the reference, ben with the wrong loss) and
submits; the instructor collects, autogrades (the kit's sandbox and hidden checks, in the instructor's
delegated cgroups), grades the written answer and releases feedback; each student sees their own score
and check messages. Then what a student must not reach, tried from the student's own session.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from datetime import UTC

import hub_ui  # noqa: E402
import lab_ui  # noqa: E402
from kit_testing import ASSIGNMENT, REPO, course_env, release_notebook  # noqa: E402
from playwright.sync_api import expect, sync_playwright  # noqa: E402

from autograder.course.examples import VARIANTS, source_answers  # noqa: E402

pytestmark = pytest.mark.browser

COURSE = "spam-transformer-lab"
INSTRUCTOR, STUDENTS = "skhubinstr", ("skhubann", "skhubben")
PASSWORDS = {INSTRUCTOR: "instructor-pw-1", "skhubann": "ann-pw-1", "skhubben": "ben-pw-1"}
WORK = {"skhubann": "reference", "skhubben": "wrong-loss"}  # autograder.course.examples.VARIANTS
EXERCISES = ("compile", "fit", "plot_history")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """The hub, its folders under a fresh 0755 folder (the users must reach the exchange), and at the end
    nothing left: no hub, no accounts, no cgroups."""
    where = Path(tempfile.mkdtemp(prefix="spamkit-hub-test-"))
    where.chmod(0o755)
    roster = where / "roster.csv"
    roster.write_text(
        "user,role,password\n"
        + "".join(
            f"{name},{'instructor' if name == INSTRUCTOR else 'student'},{PASSWORDS[name]}\n" for name in PASSWORDS
        )
    )
    port = free_port()
    log = where / "hub.log"
    cmd = [
        sys.executable,
        "-m",
        "autograder.hub",
        "--roster",
        str(roster),
        "--throwaway",
        f"--CourseHub.state_dir={where / 'state'}",
        f"--CourseHub.exchange_root={where / 'exchange'}",
        f"--CourseHub.port={port}",
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=course_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}/"
    state = {}
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, f"no hub in 120 s:\n{log.read_text()[-4000:]}"
            try:
                with urllib.request.urlopen(f"{base}hub/api/", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        plan = json.loads((where / "state" / "plan.json").read_text())
        state = {"base": base, "plan": plan, "log": log, "where": where}
        yield state
    finally:
        if state.get("squat"):
            shutil.rmtree(state["squat"], ignore_errors=True)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for name in PASSWORDS:
            subprocess.run(["userdel", "--remove", name], stderr=subprocess.DEVNULL)  # if the hub could not
        shutil.copy(log, tmp_path_factory.mktemp("hub-log") / "hub.log")  # kept by pytest, for a failure
        shutil.rmtree(where, ignore_errors=True)


def as_user(name: str, code: str) -> subprocess.CompletedProcess:
    """Python run as a user's own account (what their terminal can do)."""
    return subprocess.run(
        ["setpriv", f"--reuid={name}", f"--regid={name}", "--init-groups", "--", "/usr/bin/python3", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )


def grade_ids(nb) -> dict[str, int]:
    return {
        cell.metadata["nbgrader"]["grade_id"]: i
        for i, cell in enumerate(nb.cells)
        if "grade_id" in cell.metadata.get("nbgrader", {})
    }


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        yield playwright


class TestCourseOnHub:
    """The whole loop, in order; each step needs the one before (a failure stops the rest)."""

    def test_hub_setup(self, hub):
        plan = hub["plan"]
        assert plan["ip"] == "127.0.0.1"
        inbound = Path(plan["exchange_root"]) / COURSE / "inbound"
        assert oct(inbound.stat().st_mode & 0o7777) == oct(0o2733)
        assert inbound.owner() == INSTRUCTOR
        assert oct(Path(plan["exchange_root"]).stat().st_mode & 0o7777) == oct(0o1777)
        for name in PASSWORDS:
            assert oct(Path(pwd.getpwnam(name).pw_dir).stat().st_mode & 0o777) == oct(0o700)
        for procs in plan["cgroup_procs"]:
            assert Path(procs).owner() == INSTRUCTOR and Path(procs).parent.owner() == INSTRUCTOR

    def test_instructor_releases_the_lab_from_formgrader(self, hub, browser, tmp_path):
        base = hub["base"]
        with hub_ui.logged_in(browser, tmp_path / "instructor", base, INSTRUCTOR, PASSWORDS[INSTRUCTOR]) as page:
            # The instructor's server runs as the instructor, inside the delegated cgroups.
            uid = pwd.getpwnam(INSTRUCTOR).pw_uid
            server = next(p for p in _processes_of(uid) if "jupyterhub-singleuser" in " ".join(p[1]))
            own = Path(f"/proc/{server[0]}/cgroup").read_text()
            assert f"memory:{_tail(hub['plan'], 'memory')}" in own and f"pids:{_tail(hub['plan'], 'pids')}" in own, own
            # JupyterHub >= 4.1 forbids framing a user's server: formgrader opens in its own tab.
            page.goto(f"{base}user/{INSTRUCTOR}/formgrader/")
            expect(page.get_by_role("heading", name="Manage Assignments")).to_be_visible()
            row = hub_ui.assignment_row(page, ASSIGNMENT)
            hub_ui.formgrader_action(page, row.locator(".glyphicon-education"), timeout=300_000)  # generate
            hub_ui.formgrader_action(page, row.locator(".glyphicon-cloud-upload"))  # release
            expect(row).to_contain_text("released")
        outbound = Path(hub["plan"]["exchange_root"]) / COURSE / "outbound" / ASSIGNMENT
        assert (outbound / f"{ASSIGNMENT}.ipynb").exists()

    def test_students_fetch_write_and_submit(self, hub, browser, tmp_path):
        base = hub["base"]
        released = release_notebook(REPO)
        index = grade_ids(released)
        answers = source_answers(REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
        for student in STUDENTS:
            work = {**answers, **VARIANTS[WORK[student]]}
            with hub_ui.logged_in(browser, tmp_path / student, base, student, PASSWORDS[student]) as page:
                # Students get the Assignments tab only.
                page.get_by_role("menuitem", name="Nbgrader", exact=True).click()
                expect(page.get_by_role("menuitem", name="Assignment List", exact=True)).to_be_visible()
                expect(page.get_by_role("menuitem", name="Formgrader", exact=True)).to_have_count(0)
                page.keyboard.press("Escape")
                panel = hub_ui.open_assignments(page)
                released_list = panel.locator("#released_assignments_list")
                expect(released_list).to_contain_text(ASSIGNMENT)
                released_list.get_by_role("button", name="Fetch").click()
                expect(panel.locator("#fetched_assignments_list")).to_contain_text(ASSIGNMENT)
                lab_ui.open_notebook(page, _Lab(base, student), f"{COURSE}/{ASSIGNMENT}/{ASSIGNMENT}.ipynb")
                for grade_id in EXERCISES:
                    lab_ui.set_source(page, index[grade_id], work[grade_id])
                lab_ui.save_notebook(page)
                panel = hub_ui.open_assignments(page)
                fetched = panel.locator("#fetched_assignments_list")
                fetched.get_by_role("button", name="Submit").click()
                expect(panel.locator("#submitted_assignments_list")).to_contain_text(ASSIGNMENT, timeout=60_000)
        # A student may make the grader's lock folder in the shared /tmp before the grader does: the hub gives
        # the grader a private TMPDIR, so grading (next test) does not care.
        instructor_uid = pwd.getpwnam(INSTRUCTOR).pw_uid
        squat = as_user(
            STUDENTS[1], f"import os; os.mkdir('/tmp/spamkit-sandbox-slots-{instructor_uid}', 0o777); print('made')"
        )
        hub["squat"] = Path(f"/tmp/spamkit-sandbox-slots-{instructor_uid}")
        hub["squatted"] = squat.stdout.strip() == "made"

    def test_instructor_collects_autogrades_grades_by_hand_and_releases_feedback(self, hub, browser, tmp_path):
        base = hub["base"]
        with hub_ui.logged_in(browser, tmp_path / "instructor", base, INSTRUCTOR, PASSWORDS[INSTRUCTOR]) as page:
            page.goto(f"{base}user/{INSTRUCTOR}/formgrader/")
            row = hub_ui.assignment_row(page, ASSIGNMENT)
            hub_ui.formgrader_action(page, row.locator(".glyphicon-cloud-download"))  # collect
            page.reload()
            row = hub_ui.assignment_row(page, ASSIGNMENT)
            row.get_by_role("link", name=str(len(STUDENTS)), exact=True).click()
            expect(page.get_by_role("heading", name="Manage Submissions")).to_be_visible()
            started = time.monotonic()
            for student in STUDENTS:
                student_row = page.locator("tr").filter(has_text=student)
                hub_ui.formgrader_action(page, student_row.locator(".glyphicon-flash"), timeout=hub_ui.GRADING_TIMEOUT)
            hub["grading_seconds"] = time.monotonic() - started
            page.reload()
            scores = {s: _score(page.locator("tr").filter(has_text=s).inner_text()) for s in STUDENTS}
            assert scores["skhubann"][0] > scores["skhubben"][0], scores

            # Manual Grading > assignment > notebook > ann: the written answer gets 4 points.
            table_link = page.locator("table").get_by_role("link", name=ASSIGNMENT, exact=True)
            page.get_by_role("link", name="Manual Grading").click()
            expect(page.locator("th", has_text="Assignment ID")).to_be_visible()
            table_link.click()
            expect(page.locator("th", has_text="Notebook ID")).to_be_visible()
            table_link.click()
            expect(page.get_by_role("link", name=re.compile(r"^Submission #\d+$"))).to_have_count(len(STUDENTS))
            page.get_by_role("button", name="Show All Names").click()
            page.get_by_role("link", name="skhubann", exact=True).click()
            expect(page.locator(".breadcrumb")).to_contain_text("Submission #")
            expect(page.get_by_text("skhubann", exact=True)).to_be_attached()
            page.wait_for_load_state("networkidle")  # formgrader's grade models are fetched after the page
            compile_report = page.locator(".cell").filter(has=page.locator("input#test_compile"))
            expect(compile_report.locator(".output_stdout")).to_contain_text("Grader checks:")
            page.locator("input#analysis").click()
            with page.expect_response(
                lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"
            ) as saved:
                page.locator("input#analysis").fill("4")
                page.locator("input#analysis").press("Tab")
            assert saved.value.ok, saved.value.status
            assert _manual_score(hub["plan"], "skhubann", "analysis") == 4

            page.goto(f"{base}user/{INSTRUCTOR}/formgrader/")
            row = hub_ui.assignment_row(page, ASSIGNMENT)
            hub_ui.formgrader_action(page, row.locator(".glyphicon-comment"), timeout=300_000)  # generate feedback
            hub_ui.formgrader_action(page, row.locator(".glyphicon-envelope"))  # release feedback

    def test_students_fetch_their_own_feedback(self, hub, browser, tmp_path):
        base = hub["base"]
        for student in STUDENTS:
            with hub_ui.logged_in(browser, tmp_path / student, base, student, PASSWORDS[student]) as page:
                panel = hub_ui.open_assignments(page)
                submitted = panel.locator("#submitted_assignments_list")
                submitted.get_by_role("button", name="Fetch Feedback").click()
                expect(submitted).to_contain_text("(view feedback)", timeout=60_000)
                folder = f"{COURSE}/{ASSIGNMENT}/feedback"
                listing = hub_ui.api(page, "GET", f"{base}user/{student}/api/contents/{folder}").json()
                html_path = f"{listing['content'][0]['path']}/{ASSIGNMENT}.html"
                page.goto(f"{base}user/{student}/files/{html_path}")
                text = page.locator("body").inner_text()
                shown = re.search(r"Score: (\d+(?:\.\d+)?) / (\d+(?:\.\d+)?)", text)
                assert shown, text[:2000]
                assert float(shown.group(1)) == pytest.approx(_gradebook_score(hub["plan"], student)), text[:2000]
                assert "Grader checks:" in text and ("[PASS]" in text or "[FAIL]" in text), text[:3000]
                for grader_internal in ("BEGIN HIDDEN TESTS", "autograder/grading", "def test_hidden"):
                    assert grader_internal not in page.content(), grader_internal
                if WORK[student] == "wrong-loss":
                    assert "[FAIL]" in text
        hub["feedback_seen"] = True

    def test_a_student_reaches_nothing_of_the_others(self, hub, browser, tmp_path):
        base, plan = hub["base"], hub["plan"]
        student, other = STUDENTS
        exchange = Path(plan["exchange_root"]) / COURSE
        submission = next((exchange / "inbound").iterdir())  # as root: the real name to try
        instructor_home = Path(pwd.getpwnam(INSTRUCTOR).pw_dir)
        with hub_ui.logged_in(browser, tmp_path / student, base, student, PASSWORDS[student]) as page:
            # Through the Jupyter API: another's server, the instructor's server and formgrader, a service.
            for path in (
                f"user/{other}/api/contents/",
                f"user/{other}/api/contents/{COURSE}/{ASSIGNMENT}/feedback",
                f"user/{INSTRUCTOR}/api/contents/",
                f"user/{INSTRUCTOR}/formgrader/api/assignments",
                f"services/{COURSE}/",
                f"user/{student}/formgrader/api/assignments",
            ):
                response = hub_ui.api(page, "GET", f"{base}{path}")
                assert response.status in (403, 404), (path, response.status, response.text()[:300])
            # Through the student's own kernel: file permissions and signals.
            probe = _PROBE.format(
                targets=json.dumps(
                    {
                        "other home": str(Path(pwd.getpwnam(other).pw_dir)),
                        "inbound listing": str(exchange / "inbound"),
                        "feedback listing": str(exchange / "feedback"),
                        "course folder": str(instructor_home / COURSE),
                        "course source": str(instructor_home / COURSE / "source"),
                        "gradebook": str(instructor_home / COURSE / "gradebook.db"),
                        "grader's temp (hidden splits, jobs)": plan["instructor_tmp"],
                    }
                ),
                pattern=json.dumps(str(exchange / "inbound" / f"{other}+*")),
                pid=next(p[0] for p in _processes_of(pwd.getpwnam(INSTRUCTOR).pw_uid)),
            )
            notebook = "isolation_probe.ipynb"
            put = hub_ui.api(
                page,
                "PUT",
                f"{base}user/{student}/api/contents/{notebook}",
                {
                    "type": "notebook",
                    "format": "json",
                    "content": {
                        "nbformat": 4,
                        "nbformat_minor": 5,
                        "metadata": {
                            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
                        },
                        "cells": [
                            {
                                "cell_type": "code",
                                "id": "probe",
                                "metadata": {},
                                "outputs": [],
                                "execution_count": None,
                                "source": probe,
                            }
                        ],
                    },
                },
            )
            assert put.ok, put.text()
            lab_ui.open_notebook(page, _Lab(base, student), notebook)
            output = lab_ui.run_all_until(page, 0, "RESULT")
            result = json.loads(output.inner_text().split("RESULT", 1)[1])
        assert all(outcome == "refused" for outcome in result["files"].values()), result
        assert result["guess other's submission"] == [], result
        assert result["signal the grader"] == "refused", result
        assert submission.name.startswith(tuple(STUDENTS)) and "+" in submission.name
        assert hub.get("squatted"), "a student could not even make the folder; the test's premise changed"

    def test_graded_on_submit_under_each_policy_and_the_daily_cap(self, hub, browser, tmp_path):
        """The hub's grading service, turned on in the instructor's course_config.py (read again on each pass):
        each resubmission is collected and graded with no one acting (identical code: the stored result, no
        new training), and the student sees what the policy allows: now, after the due date (before, then
        after), never; the daily cap refuses a third submission in the Assignments tab, and the service
        refuses one made around that refusal (nbgrader's own submit, from the student's terminal)."""
        base, plan = hub["base"], hub["plan"]
        ann, ben = STUDENTS
        # The service is a process of the instructor's account, inside the delegated cgroups, as their server is.
        uid = pwd.getpwnam(INSTRUCTOR).pw_uid
        service = next(p for p in _processes_of(uid) if "autograder.hub.grading_service" in p[1])
        own = Path(f"/proc/{service[0]}/cgroup").read_text()
        assert f"memory:{_tail(plan, 'memory')}" in own and f"pids:{_tail(plan, 'pids')}" in own, own
        seen = _set_on_submit(plan, enabled=True, feedback="now", daily_cap=2)
        # The submissions formgrader collected before are not the service's to grade, nor counted.
        assert {e["state"] for e in seen["entries"].values()} == {"earlier"}, seen
        with (
            hub_ui.logged_in(browser, tmp_path / ann, base, ann, PASSWORDS[ann]) as ann_page,
            hub_ui.logged_in(browser, tmp_path / ben, base, ben, PASSWORDS[ben]) as ben_page,
        ):
            # now: graded with no one acting, feedback at once
            first = _submit_in_tab(ann_page, plan, ann)
            entry = _wait_for_entry(plan, first, lambda e: e["state"] == "graded" and e["released"])
            assert _gradebook_timestamp(plan, ann) == _utc(entry["timestamp"])
            row = _fetch_feedback(ann_page, first)
            expect(row).to_contain_text("(view feedback)", timeout=60_000)
            text = _feedback_text(ann_page, base, ann, first)
            shown = re.search(r"Score: (\d+(?:\.\d+)?) / (\d+(?:\.\d+)?)", text)
            assert shown and float(shown.group(1)) == pytest.approx(_gradebook_score(plan, ann)), text[:2000]
            assert "Grader checks:" in text, text[:2000]

            # after the due date: graded, nothing for the student before it ...
            _set_on_submit(plan, enabled=True, feedback="after_due", daily_cap=2, due=_utc_text(+86400))
            second = _submit_in_tab(ben_page, plan, ben)
            entry = _wait_for_entry(plan, second, lambda e: e["state"] == "graded")
            assert not entry["released"], entry
            assert _gradebook_timestamp(plan, ben) == _utc(entry["timestamp"])
            row = _fetch_feedback(ben_page, second)
            expect(row).not_to_contain_text("feedback")
            assert not _feedback_in_exchange(plan, ben, second)
            # ... and everything graded once it has passed (the same submission, no new grading)
            _set_on_submit(plan, enabled=True, feedback="after_due", daily_cap=2, due=_utc_text(-60))
            _wait_for_entry(plan, second, lambda e: e["released"])
            assert _feedback_in_exchange(plan, ben, second)
            row = _fetch_feedback(ben_page, second)
            expect(row).to_contain_text("(view feedback)", timeout=60_000)
            assert "Grader checks:" in _feedback_text(ben_page, base, ben, second)

            # never: graded (ann's second of the day), never released by the service
            _set_on_submit(plan, enabled=True, feedback="never", daily_cap=2)
            third = _submit_in_tab(ann_page, plan, ann)
            entry = _wait_for_entry(plan, third, lambda e: e["state"] == "graded")
            assert _gradebook_timestamp(plan, ann) == _utc(entry["timestamp"])
            row = _fetch_feedback(ann_page, third)
            expect(row).not_to_contain_text("feedback")
            assert not _feedback_in_exchange(plan, ann, third)

            # the daily cap: a third submission is refused in the Assignments tab, with the reason
            panel = hub_ui.open_assignments(ann_page)
            before = _cache_entries(ann)
            panel.locator("#fetched_assignments_list").get_by_role("button", name="Submit").click()
            dialog = ann_page.locator("#submission-message")
            expect(dialog).to_contain_text("grades at most 2 submissions per student per day", timeout=60_000)
            ann_page.locator(".jp-Dialog").get_by_role("button", name=re.compile(r"^ok$", re.I)).click()
            assert _cache_entries(ann) == before
            # ... and nbgrader's own submit from ann's terminal (no cap check) is refused by the service
            bypass = _submit_from_terminal(plan, ann)
            assert bypass.returncode == 0, bypass.stderr[-2000:]
            (extra,) = set(_cache_entries(ann)) - set(before)
            entry = _wait_for_entry(plan, extra, lambda e: e["state"] == "over_cap")
            assert _gradebook_timestamp(plan, ann) == _utc(_entry_named(plan, third)["timestamp"])  # not graded
            row = _fetch_feedback(ann_page, extra)
            expect(row).to_contain_text("(view feedback)", timeout=60_000)
            notice = _feedback_text(ann_page, base, ann, extra)
            assert "Not graded" in notice and "at most 2 submissions per student per day" in notice, notice
            assert "Score:" not in notice
        # The batch's log (formgrader's Autograde writes none): three gradings by the service. Ann's second one is
        # code the service graded before: the stored result, no training. (The first two reuse formgrader's runs
        # too, unless the kit's grading code changed on disk between formgrader's Autograde and the service's
        # start: it is part of every key.)
        events = [e for e in _course_events(plan) if e["event"] in ("autograded", "executed")]
        assert [e["student"] for e in events if e["event"] == "autograded"] == [ann, ben, ann], events
        first_of_ann = next(i for i, e in enumerate(events) if e["event"] == "autograded")
        assert not [e for e in events[first_of_ann:] if e["event"] == "executed" and e["student"] == ann], events


def _course_root(plan: dict) -> Path:
    return Path(plan["course_root"])


def _ledger(plan: dict) -> dict:
    path = _course_root(plan) / ".kit" / "on_submit" / f"{ASSIGNMENT}.json"
    return json.loads(path.read_text()) if path.exists() else {"entries": {}}


def _course_events(plan: dict) -> list[dict]:
    path = _course_root(plan) / ".kit" / "log" / f"{ASSIGNMENT}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait(condition, what: str, timeout: float = 300):
    """Poll ``condition`` until it gives something truthy (the service works on its own clock)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s; ledger: {_LAST[0]}"
        time.sleep(0.5)


_LAST = [None]


def _entry_named(plan: dict, cache_name: str) -> dict | None:
    """The ledger's entry of a submission, by the name of the student's cache folder (<student>+<a>+<ts>)."""
    ledger = _ledger(plan)
    _LAST[0] = json.dumps(ledger)[-3000:]
    return next((e | {"name": n} for n, e in ledger["entries"].items() if n.rsplit("+", 1)[0] == cache_name), None)


def _wait_for_entry(plan: dict, cache_name: str, done) -> dict:
    return _wait(
        lambda: (lambda e: e if e and done(e) else None)(_entry_named(plan, cache_name)),
        f"the service's decision on {cache_name}",
        timeout=hub_ui.GRADING_TIMEOUT / 1000,
    )


def _set_on_submit(plan: dict, due: str = "", **settings) -> dict:
    """The instructor's course_config.py with these OnSubmit settings (and LateWork.due_date); the ledger once
    a pass has started after the change."""
    path = _course_root(plan) / "course_config.py"
    text = path.read_text().split(_BLOCK, 1)[0]
    lines = [f"c.OnSubmit.{name} = {value!r}" for name, value in {**settings, "poll_seconds": 1.0}.items()]
    if due:
        lines.append(f"c.LateWork.due_date = {due!r}")
    tmp = path.with_name(".course_config.py.tmp")
    tmp.write_text(text + _BLOCK + "\n".join(lines) + "\n")
    stat = path.stat()
    os.chown(tmp, stat.st_uid, stat.st_gid)
    tmp.chmod(stat.st_mode & 0o777)
    changed = time.time()
    os.replace(tmp, path)
    wanted = {name: value for name, value in settings.items() if name != "poll_seconds"}

    def applied():
        ledger = _ledger(plan)
        last = ledger.get("last_pass")
        if (
            last
            and _utc(last["started"]).timestamp() > changed + 0.01
            and all(last["settings"].get(k) == v for k, v in wanted.items())
        ):
            return ledger
        return None

    return _wait(applied, f"a pass of the grading service with {settings}", timeout=120)


_BLOCK = "\n# --- set by the hub test (graded on submit) ---\n"


def _utc(text: str):

    from nbgrader.utils import parse_utc

    return parse_utc(text).replace(tzinfo=UTC)


def _utc_text(offset_seconds: float) -> str:
    from datetime import datetime, timedelta

    return (datetime.now(UTC) + timedelta(seconds=offset_seconds)).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cache_entries(student: str) -> list[str]:
    cache = Path(pwd.getpwnam(student).pw_dir) / ".local/share/jupyter/nbgrader_cache" / COURSE
    return sorted(p.name for p in cache.glob(f"{student}+{ASSIGNMENT}+*")) if cache.exists() else []


def _submit_in_tab(page, plan: dict, student: str) -> str:
    """Submit in the Assignments tab; the new submission's cache name (<student>+<assignment>+<timestamp>)."""
    before = _cache_entries(student)
    panel = hub_ui.open_assignments(page)
    panel.locator("#fetched_assignments_list").get_by_role("button", name="Submit").click()
    (new,) = _wait(lambda: set(_cache_entries(student)) - set(before), f"{student}'s submission", timeout=60)
    return new


def _submit_from_terminal(plan: dict, student: str) -> subprocess.CompletedProcess:
    """nbgrader submit as the student's own account, with nbgrader's plain submit (what a student who bypasses
    the Assignments tab's check can run)."""
    home = pwd.getpwnam(student).pw_dir
    env = {
        "HOME": home,
        "USER": student,
        "PATH": f"{plan['users_bin']}:/usr/bin:/bin",
        "JUPYTER_CONFIG_PATH": plan["config_dirs"]["student"],
    }
    return subprocess.run(
        [
            "setpriv",
            f"--reuid={student}",
            f"--regid={student}",
            "--init-groups",
            "--",
            f"{plan['users_bin']}/nbgrader",
            "submit",
            ASSIGNMENT,
            f"--course={COURSE}",
            "--ExchangeFactory.submit=nbgrader.exchange.default.submit.ExchangeSubmit",
            "--Authenticator.plugin_class=nbgrader.auth.NoAuthPlugin",
        ],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _fetch_feedback(page, cache_name: str):
    """Fetch Feedback in the Assignments tab; the (re-drawn) row of that submission."""
    timestamp = cache_name.split("+", 2)[2]
    panel = hub_ui.open_assignments(page)
    panel.locator("#refresh_assignments_list").click()
    submitted = panel.locator("#submitted_assignments_list")
    expect(submitted).to_contain_text(timestamp, timeout=60_000)
    with page.expect_response(lambda r: "fetch_feedback" in r.url) as fetched:
        submitted.get_by_role("button", name="Fetch Feedback").click()
    assert fetched.value.ok, fetched.value.status
    row = submitted.locator(".nested_list_item").filter(has_text=timestamp)
    expect(row).to_have_count(1, timeout=60_000)
    return row


def _feedback_in_exchange(plan: dict, student: str, cache_name: str) -> bool:
    """Is there feedback in the exchange for this submission (nbgrader's name: the hash of its secret)?"""
    from nbgrader.utils import notebook_hash

    cache = Path(pwd.getpwnam(student).pw_dir) / ".local/share/jupyter/nbgrader_cache" / COURSE / cache_name
    secret = (cache / "submission_secret.txt").read_text()
    name = notebook_hash(secret=secret, notebook_id=ASSIGNMENT)
    return (Path(plan["exchange_root"]) / COURSE / "feedback" / f"{name}.html").exists()


def _feedback_text(page, base: str, student: str, cache_name: str) -> str:
    timestamp = cache_name.split("+", 2)[2]
    viewer = page.context.new_page()
    try:
        viewer.goto(f"{base}user/{student}/files/{COURSE}/{ASSIGNMENT}/feedback/{timestamp}/{ASSIGNMENT}.html")
        text = viewer.locator("body").inner_text()
        for grader_internal in ("BEGIN HIDDEN TESTS", "autograder/grading", "def test_hidden"):
            assert grader_internal not in viewer.content(), grader_internal
        return text
    finally:
        viewer.close()


def _gradebook_timestamp(plan: dict, student: str):

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{plan['course_root']}/gradebook.db") as gb:
        return gb.find_submission(ASSIGNMENT, student).timestamp.replace(tzinfo=UTC)


_PROBE = """import glob, json, os
outcome = {{"files": {{}}}}
for what, path in {targets}.items():
    try:
        try:
            os.listdir(path)
        except NotADirectoryError:
            open(path, "rb").read(1)
        outcome["files"][what] = "READ"
    except PermissionError:
        outcome["files"][what] = "refused"
    except FileNotFoundError:
        outcome["files"][what] = "missing"
outcome["guess other's submission"] = glob.glob({pattern})
try:
    os.kill({pid}, 0)
    outcome["signal the grader"] = "SENT"
except PermissionError:
    outcome["signal the grader"] = "refused"
print("RESULT" + json.dumps(outcome))
"""


class _Lab:
    """The bits of lab_ui's server that open_notebook uses: the user's JupyterLab URL."""

    def __init__(self, base: str, user: str):
        self.base, self.user = base, user

    def link(self, path: str = "lab") -> str:
        return f"{self.base}user/{self.user}/{path}"


def _processes_of(uid: int) -> list[tuple[int, list[str]]]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    out.append((int(entry.name), (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")))
            except OSError:
                pass
    return out


def _tail(plan: dict, controller: str) -> str:
    """The instructor's cgroup path (as /proc/<pid>/cgroup shows it) in a hierarchy."""
    folder = next(Path(p).parent for p in plan["cgroup_procs"] if f"/{controller}/" in p or f"/{controller}," in p)
    return "/" + str(folder).split(f"/sys/fs/cgroup/{controller}/", 1)[1]


def _gradebook_score(plan: dict, student: str) -> float:
    """The student's total in the instructor's gradebook (read as root)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{plan['course_root']}/gradebook.db") as gb:
        return gb.find_submission(ASSIGNMENT, student).score


def _manual_score(plan: dict, student: str, cell: str) -> float | None:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{plan['course_root']}/gradebook.db") as gb:
        notebook = gb.find_submission(ASSIGNMENT, student).notebooks[0]
        return next(g.manual_score for g in notebook.grades if g.name == cell)


def _score(row_text: str) -> tuple[float, float]:
    found = re.search(r"(\d+(?:\.\d+)?) / (\d+(?:\.\d+)?)", row_text)
    assert found, row_text
    return float(found.group(1)), float(found.group(2))
