"""Which LMS user each nbgrader student is: what the intake read from file names.

``spamkit collect --zip`` brings Canvas and Moodle downloads in through
nbgrader's ``zip_collect`` and ``intake.LmsCollector``. The LMS's own id of
the student is in each file name:

- Canvas "Download Submissions": ``lastfirst[_late]_<user id>_<submission id>_<file>``;
  the number after the name is the Canvas user id (the ``ID`` column of the
  Canvas gradebook).
- Moodle "Download all submissions": ``Full Name_<participant id>_assignsubmission_file_<file>``;
  the number is the assignment's participant id (``Participant <id>`` in the
  ``Identifier`` column of the assignment's grading worksheet).

With the Canvas and Moodle presets that number becomes the nbgrader student
id; a custom ``named_regexp`` may give another student id and name the LMS id
with a ``canvas_id`` or ``moodle_id`` group. Either way the collector records
here what it read, so grades can go back to the LMS later
(``autograder.lms_export``):

    .kit/lms/<assignment>.json
    {"<student id>": {"canvas": {"id": "12345", "name": "doejane", "file": "doejane_12345_900001_lab.ipynb"}}}

Canvas marks a late file ``_late_`` (``"late": true`` here) but its
download holds no submission time, nor does Moodle's: the intake writes no
``timestamp.txt`` from them (``spamkit collect`` names the students Canvas
marked late who have none). A student seen with two different ids of the same LMS keeps both
(``other_ids``); the export then leaves that student out and lists them,
because a grade sent to the wrong person is worse than one typed by hand.
"""

from __future__ import annotations

import fcntl
import json
from pathlib import Path

from .store import write_json_atomic

LMS_NAMES = {"canvas": "Canvas", "moodle": "Moodle"}


def ids_path(course_root: Path, assignment: str) -> Path:
    return Path(course_root) / ".kit" / "lms" / f"{assignment}.json"


def read_ids(course_root: Path, assignment: str) -> dict[str, dict]:
    """{student id: {lms: {"id", "name", "file"[, "other_ids"]}}} of the course's assignment ({} if none)."""
    path = ids_path(course_root, assignment)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def lms_ids_of(groups: dict, lms: str) -> dict[str, str]:
    """{lms: id} named by one file name's match: the presets' student id, or canvas_id / moodle_id groups."""
    found = {name: groups[f"{name}_id"] for name in LMS_NAMES if groups.get(f"{name}_id")}
    if lms in LMS_NAMES and lms not in found and groups.get("student_id"):
        found[lms] = groups["student_id"]
    return found


def record(
    course_root: Path,
    assignment: str,
    student: str,
    lms: str,
    lms_id: str,
    name: str = "",
    file: str = "",
    late: bool = False,
) -> None:
    """Remember that ``student`` is ``lms_id`` in ``lms`` (several collect runs add up); ``late``: the LMS
    marked the file late (Canvas' ``_late_``), kept as ``"late": true``."""
    path = ids_path(course_root, assignment)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ids = read_ids(course_root, assignment)
        entry = ids.setdefault(student, {})
        known = entry.get(lms) or {}
        others = {*known.get("other_ids", []), *([known["id"]] if known.get("id") else [])} - {lms_id}
        new = {
            "id": lms_id,
            "name": name,
            "file": file,
            **({"other_ids": sorted(others)} if others else {}),
            **({"late": True} if late else {}),
        }
        if new != known:
            entry[lms] = new
            write_json_atomic(path, ids)
