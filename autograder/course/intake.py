"""What came in: one entry per student, with a clear status, before grading.

Submissions live where nbgrader keeps them,
``submitted/<student>/<assignment>/<notebook>.ipynb``. They get there by
nbgrader's exchange (``nbgrader collect``), by hand, or from an LMS download
through nbgrader's ``zip_collect`` with the kit's ``LmsCollector``
(``nbgrader_plugins.py``; the Canvas and Moodle file naming it knows is here). ``inventory`` then says, per student, whether there is a
notebook grading can use, and if not, why (no submission, empty or corrupt
file, wrong file name, several notebooks), so a batch can report every
student and go on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..model import Status


@dataclass
class Entry:
    """One student of the roster or with a submission folder; only Status.OK goes on to grading."""

    student: str
    status: Status
    notebook: Path | None = None
    message: str = ""
    notes: list[str] = field(default_factory=list)


def read_notebook(path: Path) -> tuple[Status, str]:
    """(status, message) of one submitted notebook file."""
    data = path.read_bytes()
    if not data.strip():
        return Status.EMPTY, f"{path.name} is empty (0 bytes of notebook)"
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as exc:  # noqa: BLE001 - JSON, Unicode and nbformat errors on garbage
        return Status.UNREADABLE, f"{path.name} is not a readable notebook ({type(exc).__name__})"
    if not nb.cells:
        return Status.EMPTY, f"{path.name} has no cells"
    return Status.OK, ""


def inventory(submitted_dir: Path, assignment: str, notebook: str, roster: list[str] = ()) -> list[Entry]:
    """One entry per student of the roster or with a submission folder, sorted by id."""
    students = set(roster)
    if submitted_dir.is_dir():
        students |= {p.parent.name for p in submitted_dir.glob(f"*/{assignment}") if p.is_dir()}
    entries = []
    for student in sorted(students):
        folder = submitted_dir / student / assignment
        expected = folder / f"{notebook}.ipynb"
        others = sorted(p.name for p in folder.glob("*.ipynb") if p != expected) if folder.is_dir() else []
        if not folder.is_dir() or (not expected.exists() and not others):
            entries.append(Entry(student, Status.NO_SUBMISSION, message="nothing was submitted"))
            continue
        if not expected.exists():
            entries.append(Entry(
                student, Status.WRONG_NAME,
                message=f"no {expected.name}; found {', '.join(others)} (rename it, or run `spamkit collect --fix-names`)",
            ))
            continue
        status, message = read_notebook(expected)
        entry = Entry(student, status, expected if status == Status.OK else None, message)
        if others:
            entry.notes.append(f"other notebooks ignored: {', '.join(others)}")
        entries.append(entry)
    return entries


def fix_names(submitted_dir: Path, assignment: str, notebook: str) -> list[str]:
    """Rename a student's only notebook to the expected name; returns what was done."""
    done = []
    for folder in sorted(submitted_dir.glob(f"*/{assignment}")):
        expected = folder / f"{notebook}.ipynb"
        found = sorted(folder.glob("*.ipynb"))
        if expected.exists() or len(found) != 1:
            continue
        found[0].rename(expected)
        done.append(f"{folder.parent.name}: {found[0].name} -> {expected.name}")
    return done


# --- LMS downloads -------------------------------------------------------------

# Matched against the full path of each extracted file (nbgrader uses re.match).
LMS_PATTERNS = {
    # Canvas "Download Submissions": lastfirst[_late]_<user id>_<submission id>_<original name>,
    # where Canvas appends -1, -2 ... to the original name on resubmission.
    "canvas": r".*/(?P<name>[^/_]+)_(?:late_|LATE_)?(?P<student_id>\d+)_(?P<submission_id>\d+)_(?P<file_id>[^/]+)$",
    # Moodle "Download all submissions": Full Name_<participant id>_assignsubmission_file_<name>,
    # or the same as a folder when downloaded "in folders".
    "moodle": r".*/(?P<name>[^/]+?)_(?P<student_id>\d+)_assignsubmission_file_/?(?P<file_id>[^/]+)$",
}
# What LMSs and browsers append to a resubmitted file's name.
COPY_SUFFIX = r"(?:-\d+| ?\(\d+\)|_\d+| - Copy)?"


def zip_collect(course_root: Path, assignment: str, archives: list[Path], lms: str,
                regexp: str = "", env: dict | None = None) -> subprocess.CompletedProcess:
    """Copy LMS downloads into nbgrader's ``downloaded/<assignment>/archive`` and run zip_collect."""
    archive_dir = course_root / "downloaded" / assignment / "archive"
    archive_dir.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        shutil.copy(archive, archive_dir / Path(archive).name)
    args = [sys.executable, "-m", "nbgrader", "zip_collect", assignment, "--force",
            "--collector=autograder.nbgrader_plugins.LmsCollector", f"--LmsCollector.lms={lms}"]
    if regexp:
        args.append(f"--LmsCollector.named_regexp={regexp}")
    return subprocess.run(args, cwd=course_root, env={**os.environ, **(env or {})}, capture_output=True, text=True)
