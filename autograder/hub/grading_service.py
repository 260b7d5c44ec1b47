"""The hub's grading service: each submission graded as it arrives, its feedback released as the course says.

JupyterHub starts it (``c.JupyterHub.services``, jupyterhub_config.py) as the instructor's Unix account,
inside the instructor's delegated cgroups (``singleuser_in_cgroup.sh``, as the instructor's server), with
the instructor's private TMPDIR: the sandbox it grades in is the one formgrader's Autograde uses, and no
student can reach or weaken it. It restarts it if it ends. Every ``OnSubmit.poll_seconds`` it reads the
course's settings again (course_config.py: ``OnSubmit``, ``LateWork``) and, when ``OnSubmit.enabled``:

1. lists the exchange's ``inbound/`` (only the instructor can) and records each entry it has not seen in
   its ledger (``.kit/on_submit/<assignment>.json`` in the course root), with the time it first saw it.
   An entry whose Unix owner is not the student its name claims is ignored (never collected). Entries
   already collected by the instructor are ``earlier``; of a student's new entries the newest is decided,
   older ones are ``superseded``;
2. decides the newest: over the daily cap (submissions ``accepted`` or ``graded`` that it first saw the
   same day) it is ``over_cap``, not collected, and gets a notice as its feedback; otherwise ``accepted``
   and collected by nbgrader's own collect (``CollectChosen``: exactly that entry, nbgrader's copying);
3. grades the accepted students through the kit's batch (``api.grade_class``: sandboxed, resumable,
   identical code graded once); a student ``publish.held_back`` names (grader error, not graded) is
   ``held`` and gets a notice, never a grade; the others are ``graded``;
4. releases the feedback of graded submissions as ``OnSubmit.feedback`` says, through nbgrader's
   generate_feedback and release_feedback (``api.feedback`` then the API's ``release_feedback``);
5. writes each decided submission's status where only its submitter can find it (on_submit.py) and the
   course's public settings (``<exchange>/<course>/on_submit.json``) for the students' submit.

A pass that fails (another batch holds the course, a setting cannot be read) is logged and the next one
tries again; ``accepted`` submissions stay accepted until graded, so a killed service loses nothing.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import pwd
import stat
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from nbgrader.exchange.default.collect import ExchangeCollect
from nbgrader.utils import notebook_hash, parse_utc
from traitlets import List, Unicode
from traitlets.config import Config

from .on_submit import COUNTED, PUBLIC_FILE, OnSubmit, cap_message, day_of, status_name


class CollectChosen(ExchangeCollect):
    """nbgrader's collect of exactly the inbound entries the service chose (never one it did not check)."""

    chosen = List(Unicode(), help="inbound entry names to collect (set by the service, not a setting)")

    def init_src(self):
        super().init_src()
        self.src_records = [self._path_to_record(os.path.join(self.inbound_path, name)) for name in self.chosen]


def now_utc() -> datetime:
    return datetime.now(UTC)


def _write_json(path: Path, data, mode: int = 0o600) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.chmod(mode)
    os.replace(tmp, path)


def _write_public(path: Path, text: str) -> None:
    """A file other accounts read (0644), replaced atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o644)
    os.replace(tmp, path)


NOTICE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
</head><body style="font-family: sans-serif; max-width: 40em; margin: 2em auto">
<h1>{title}</h1><p>{message}</p><p>Submission of {student}, {assignment}, {timestamp}.</p>
</body></html>
"""


class GradingService:
    def __init__(self, course_root: Path, exchange_root: str, log=print):
        self.root = Path(course_root).resolve()
        self.exchange_root = exchange_root
        self.log = log
        self.poll = OnSubmit().poll_seconds

    # --- settings and places --------------------------------------------------------------------
    def open(self):
        """The course as course_config.py says now (read again every pass), with the hub's exchange."""
        from autograder.course.course import open_course

        overrides = Config()
        overrides.Exchange.root = self.exchange_root
        overrides.Exchange.path_includes_course = True
        course = open_course(self.root, overrides)
        return course, OnSubmit(config=course.config)

    def paths(self, course) -> tuple[Path, Path, Path]:
        exchange = Path(self.exchange_root) / course.coursedir.course_id
        return exchange, exchange / "inbound", exchange / "feedback"

    def ledger_path(self, course) -> Path:
        return course.store.root / "on_submit" / f"{course.assignment}.json"

    def load_ledger(self, course) -> dict:
        path = self.ledger_path(course)
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
        return {"entries": {}}

    def save_ledger(self, course, ledger: dict) -> None:
        path = self.ledger_path(course)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, ledger)

    # --- one pass ---------------------------------------------------------------------------------
    def run_pass(self) -> dict:
        started = now_utc()
        course, settings = self.open()
        exchange, inbound, feedback_dir = self.paths(course)
        public = json.dumps(settings.public(), indent=1)
        public_file = exchange / PUBLIC_FILE
        if not public_file.is_file() or public_file.read_text(encoding="utf-8") != public:
            _write_public(public_file, public)
        self.poll = settings.poll_seconds
        ledger = self.load_ledger(course)
        if settings.enabled:
            try:  # the ledger is saved after each step: what was seen and collected is never seen as new again
                self.take_in(course, settings, ledger, inbound, feedback_dir, started)
                self.write_statuses(course, ledger, inbound, feedback_dir)
                self.save_ledger(course, ledger)
                self.grade(course, ledger)
                self.release(course, settings, ledger)
            finally:
                self.write_statuses(course, ledger, inbound, feedback_dir)
                self.save_ledger(course, ledger)
        ledger["last_pass"] = {
            "started": started.isoformat(),
            "ended": now_utc().isoformat(),
            "settings": settings.public(),
        }
        self.save_ledger(course, ledger)
        return ledger

    def take_in(
        self, course, settings: OnSubmit, ledger: dict, inbound: Path, feedback_dir: Path, started: datetime
    ) -> None:
        entries = ledger["entries"]
        new: dict[str, list[dict]] = {}
        for path in sorted(inbound.iterdir()):
            name = path.name
            parts = name.rsplit("+", 3)
            if name in entries or len(parts) < 3 or parts[1] != course.assignment:
                continue
            student = parts[0]
            record = {
                "student": student,
                "timestamp": parts[2],
                "seen": started.isoformat(),
                "day": day_of(started, settings.cap_timezone),
                "state": "",
                "released": False,
            }
            try:  # the entry itself (not where a symlink points) is a folder of the account it names
                entry = path.lstat()
                owner_ok = stat.S_ISDIR(entry.st_mode) and entry.st_uid == pwd.getpwnam(student).pw_uid
                submitted_at = parse_utc(parts[2])
            except (KeyError, ValueError, OverflowError):
                owner_ok, submitted_at = False, None
            if not owner_ok:
                record["state"] = "not_theirs"  # named after another account, or no such account
                self.log(f"ignored {name!r}: not owned by the student it names")
                entries[name] = record
                continue
            record["at"] = submitted_at.isoformat()
            entries[name] = record
            new.setdefault(student, []).append(record | {"name": name})
        for student, records in new.items():
            collected = course.coursedir.get_existing_timestamp(course.folder("submitted", student))
            fresh = []
            for record in records:
                if collected is not None and parse_utc(record["timestamp"]) <= collected:
                    entries[record["name"]]["state"] = "earlier"  # collected before the service saw it
                else:
                    fresh.append(record)
            fresh.sort(key=lambda r: parse_utc(r["timestamp"]))
            for record in fresh[:-1]:
                entries[record["name"]]["state"] = "superseded"
            if not fresh:
                continue
            chosen = fresh[-1]["name"]
            counted = sum(
                1
                for e in entries.values()
                if e["student"] == student and e["state"] in COUNTED and e["day"] == entries[chosen]["day"]
            )
            if settings.daily_cap and counted >= settings.daily_cap:
                entries[chosen]["state"] = "over_cap"
                entries[chosen]["message"] = cap_message(
                    course.coursedir.course_id, settings.daily_cap, settings.cap_timezone, counted
                )
                self.notice(
                    course,
                    inbound / chosen,
                    feedback_dir,
                    student,
                    entries[chosen]["timestamp"],
                    "Not graded",
                    entries[chosen]["message"],
                )
                self.log(f"{student}: over the daily cap ({counted}/{settings.daily_cap}), not graded")
            else:
                entries[chosen]["state"] = "accepted"
        accepted = [name for name, e in entries.items() if e["state"] == "accepted" and not e.get("collected")]
        if accepted:
            self.collect(course, accepted)
            for name in accepted:
                entries[name]["collected"] = True

    def collect(self, course, names: list[str]) -> None:
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.utils import capture_log

        # as NbGraderAPI.collect runs nbgrader's collect app, with update (a newer submission replaces the last)
        coursedir = CourseDirectory(config=course.config)
        coursedir.assignment_id = course.assignment
        app = CollectChosen(
            coursedir=coursedir,
            authenticator=Authenticator(config=course.config),
            config=course.config,
            chosen=list(names),
        )
        app.update = True
        outcome = capture_log(app)
        if not outcome.get("success"):
            raise RuntimeError(f"nbgrader collect failed: {outcome.get('error', '')}{outcome.get('log', '')}")
        with course.gradebook() as gb:  # a student new to the gradebook is graded like the others
            for name in names:
                gb.update_or_create_student(name.split("+", 1)[0])
        self.log(f"collected {len(names)} submission(s)")

    def grade(self, course, ledger: dict) -> None:
        from autograder import api
        from autograder.course.publish import held_back

        entries = ledger["entries"]
        waiting = {e["student"] for e in entries.values() if e["state"] == "accepted"}
        if not waiting:
            return
        for student in waiting:
            # A newly collected submission gets its own autograde (its timestamp, its secret, so its feedback),
            # even when its notebook is byte-identical to the one graded before: the stored result is used,
            # nothing runs again.
            summary = course.store.summary(course.assignment, student)
            if summary is not None and summary.gradebook_key:
                summary.gradebook_key = None
                course.store.write_summary(course.assignment, student, summary)
        t0 = time.monotonic()
        rows = api.grade_class(course, students=sorted(waiting))
        held = held_back(course)
        _, inbound, feedback_dir = self.paths(course)
        for name, e in entries.items():
            if e["state"] != "accepted" or e["student"] not in waiting:
                continue
            if e["student"] in held:
                e["state"], e["message"] = "held", held[e["student"]].reason
                self.notice(
                    course,
                    inbound / name,
                    feedback_dir,
                    e["student"],
                    e["timestamp"],
                    "Not graded yet",
                    "Your submission was received, but the grader could not grade it (the grader failed, "
                    "not your notebook). Your instructor can see it; no grade has been given.",
                )
            else:
                e["state"], e["graded"] = "graded", now_utc().isoformat()
        self.log(f"graded {', '.join(r.student + ': ' + str(r.status) for r in rows)} in {time.monotonic() - t0:.1f} s")

    def release(self, course, settings: OnSubmit, ledger: dict) -> None:
        from autograder import api
        from autograder.course.late import sync_due_date
        from autograder.course.publish import held_back

        if settings.feedback == "never":
            return
        entries = ledger["entries"]
        students = sorted({e["student"] for e in entries.values() if e["state"] == "graded" and not e["released"]})
        if not students:
            return
        due = ""
        if settings.feedback == "after_due":
            due = sync_due_date(course)
            if not due or now_utc().replace(tzinfo=None) < parse_utc(due):
                return
        held = held_back(course)
        students = [s for s in students if s not in held]
        if not students:
            return
        _, failed = api.feedback(course, students)
        for student in students:
            if student in failed:
                self.log(f"generate_feedback failed for {student}: {failed[student][-500:]}")
                continue
            outcome = course.api.release_feedback(course.assignment, student_id=student)
            if not outcome.get("success"):
                self.log(f"release_feedback failed for {student}: {outcome.get('error', '')}")
                continue
            for e in entries.values():
                if e["student"] == student and e["state"] == "graded":
                    e["released"] = True
        self.log(f"feedback released to {', '.join(students)} ({settings.feedback}{', due ' + due if due else ''})")

    # --- what students read -----------------------------------------------------------------------
    def notice(
        self, course, entry: Path, feedback_dir: Path, student: str, timestamp: str, title: str, message: str
    ) -> None:
        """A page in place of feedback for one submission: its notebooks' feedback names (nbgrader's hash of
        the submission's secret), so that the student's Fetch Feedback brings it."""
        try:
            secret = (entry / "submission_secret.txt").read_text(encoding="utf-8")
        except OSError:
            return
        page = NOTICE.format(
            title=html.escape(title),
            message=html.escape(message),
            student=html.escape(student),
            assignment=html.escape(course.assignment),
            timestamp=html.escape(timestamp),
        )
        for notebook in entry.glob("*.ipynb"):
            _write_public(feedback_dir / f"{notebook_hash(secret=secret, notebook_id=notebook.stem)}.html", page)

    def write_statuses(self, course, ledger: dict, inbound: Path, feedback_dir: Path) -> None:
        for name, e in ledger["entries"].items():
            if e["state"] in ("", "not_theirs") or e.get("status_written") == e["state"]:
                continue
            try:
                secret = (inbound / name / "submission_secret.txt").read_text(encoding="utf-8")
            except OSError:
                continue
            _write_public(
                feedback_dir / status_name(secret),
                json.dumps({"state": e["state"], "day": e["day"], "message": e.get("message", "")}),
            )
            e["status_written"] = e["state"]

    # --- the loop ---------------------------------------------------------------------------------
    def serve(self) -> None:
        self.log(f"grading service for {self.root} (exchange {self.exchange_root}) started")
        while True:
            try:
                self.run_pass()
            except Exception:  # noqa: BLE001 - the next pass tries again; the service must not end
                self.log("pass failed:\n" + traceback.format_exc()[-3000:])
            time.sleep(self.poll)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder.hub.grading_service", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--course-dir", type=Path, required=True, help="the instructor's course root")
    parser.add_argument("--exchange-root", required=True, help="nbgrader's exchange (CourseHub.exchange_root)")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    def log(text: str) -> None:
        print(f"[spamkit grading service {now_utc():%H:%M:%S}] {text}", file=sys.stderr, flush=True)

    service = GradingService(args.course_dir, args.exchange_root, log)
    if args.once:
        service.run_pass()
        return 0
    service.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
