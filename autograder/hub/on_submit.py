"""Graded on submit: the course's settings, and what both sides of the exchange agree on.

The grading service (``grading_service.py``, a JupyterHub service run as the instructor in the
instructor's delegated cgroups) collects each new submission from nbgrader's exchange, grades it through
the kit's batch and releases its feedback as ``OnSubmit.feedback`` says. It is the authority on the daily
cap: it counts, in its own ledger (the instructor's course root), the submissions it accepted for grading,
by the time *it* first saw them; nothing a student writes (file names, ``timestamp.txt``) moves that count.

For each submission it decided, it writes a small status file into the exchange's ``feedback/`` folder
(0711: nobody can list it) under a name derived from the submission's ``submission_secret.txt``, which only
the submitter (their nbgrader cache) and the instructor hold. ``CappedSubmit``, the students' nbgrader
submit (``ExchangeFactory.submit`` in their Jupyter configuration), reads their own statuses to refuse a
submission over the cap in the *Assignments* tab with a clear message, before it is made. That refusal is
a courtesy: a student who bypasses it (their terminal can run nbgrader with any configuration) is refused
by the service, which then leaves them a notice as the submission's feedback instead of a grade.
"""

from __future__ import annotations

import glob
import json
import os
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbgrader.exchange.default.submit import ExchangeSubmit
from nbgrader.utils import notebook_hash, parse_utc
from traitlets import Bool, Enum, Float, Int, Unicode, validate
from traitlets.config import Configurable

PUBLIC_FILE = "on_submit.json"  # in <exchange>/<course>/: the cap and the policy, readable by all
STATUS_ID = "spamkit-on-submit-status"
COUNTED = ("accepted", "graded")  # states that use one of the day's graded submissions


class OnSubmit(Configurable):
    """Graded on submit on the course's JupyterHub (README: Run the course on JupyterHub)."""

    enabled = Bool(
        False,
        help="grade each submission as it arrives in nbgrader's exchange (the hub's "
        "grading service; read again on every pass, no restart needed)",
    ).tag(config=True)
    feedback = Enum(
        ("now", "after_due", "never"),
        default_value="now",
        help="when a graded submission's feedback goes to the student: 'now' (as soon as it is "
        "graded), 'after_due' (once LateWork.due_date, or the gradebook's due date, has "
        "passed; nothing without a due date), 'never' (the instructor releases it from "
        "formgrader)",
    ).tag(config=True)
    daily_cap = Int(
        3,
        min=0,
        help="graded submissions per student per day (0: no cap); a submission over it "
        "is not graded, and its feedback says why",
    ).tag(config=True)
    cap_timezone = Unicode(
        "UTC", help="the time zone whose calendar day the cap counts (IANA name, e.g. Europe/Berlin)"
    ).tag(config=True)
    poll_seconds = Float(5.0, min=0.5, help="seconds between two looks at the exchange").tag(config=True)

    @validate("cap_timezone")
    def _known_zone(self, proposal):
        try:
            ZoneInfo(proposal["value"])
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"OnSubmit.cap_timezone {proposal['value']!r} is not a time zone: {exc}") from None
        return proposal["value"]

    def public(self) -> dict:
        return {
            "enabled": self.enabled,
            "feedback": self.feedback,
            "daily_cap": self.daily_cap,
            "cap_timezone": self.cap_timezone,
        }


def day_of(moment: datetime, zone: str) -> str:
    """The calendar day (YYYY-MM-DD) of an aware datetime in ``zone``."""
    return moment.astimezone(ZoneInfo(zone)).date().isoformat()


def status_name(secret: str) -> str:
    """The file name of a submission's status in the exchange's feedback folder (not guessable without the
    submission's secret)."""
    return notebook_hash(secret=secret, notebook_id=STATUS_ID) + ".json"


def cap_message(course_id: str, cap: int, zone: str, counted: int) -> str:
    return (
        f"Not graded: {course_id} grades at most {cap} submission{'s' if cap != 1 else ''} per student per "
        f"day, and {counted} of yours from today ({zone}) are graded or waiting to be graded. "
        "Submit again tomorrow; your last graded submission keeps its grade."
    )


class CappedSubmit(ExchangeSubmit):
    """nbgrader's submit, refused before it is made when the student's graded submissions of the day (what the
    grading service says about each of their own submissions) have reached the course's cap."""

    def copy_files(self):
        self._check_cap()
        super().copy_files()

    def _check_cap(self) -> None:
        course_path = os.path.join(self.root, self.coursedir.course_id)
        try:
            with open(os.path.join(course_path, PUBLIC_FILE), encoding="utf-8") as fh:
                settings = json.load(fh)
        except (OSError, ValueError):
            return  # no grading service: nbgrader's submit as it is
        cap = int(settings.get("daily_cap") or 0)
        if not settings.get("enabled") or cap <= 0:
            return
        zone = settings.get("cap_timezone") or "UTC"
        today = day_of(datetime.now(UTC), zone)
        counted = 0
        pattern = os.path.join(self.cache, self.coursedir.course_id, f"*+{self.coursedir.assignment_id}+*")
        for entry in glob.glob(pattern):
            try:
                stamp = parse_utc(os.path.basename(entry).split("+")[2])
                with open(os.path.join(entry, "submission_secret.txt"), encoding="utf-8") as fh:
                    secret = fh.read()
            except (OSError, ValueError, IndexError):
                continue
            status = _read_status(os.path.join(course_path, "feedback", status_name(secret)))
            if status is None:  # not seen by the service yet: it will count if graded
                if day_of(stamp.replace(tzinfo=UTC), zone) == today:
                    counted += 1
            elif status.get("state") in COUNTED and status.get("day") == today:
                counted += 1
        if counted >= cap:
            self.fail(cap_message(self.coursedir.course_id, cap, zone, counted))


def _read_status(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None
