"""What came in: one entry per student, with a clear status, before grading.

Submissions live where nbgrader keeps them,
``submitted/<student>/<assignment>/<notebook>.ipynb``. They get there by
nbgrader's exchange (``nbgrader collect``), by hand, or from an LMS download
through nbgrader's ``zip_collect`` with ``LmsCollector`` below (Canvas and
Moodle file naming; nbgrader loads it as ``autograder.nbgrader_plugins.LmsCollector``). ``inventory`` then says, per student, whether there is a
notebook grading can use, and if not, why (no submission, empty or corrupt
file, wrong file name, several notebooks), so a batch can report every
student and go on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Enum, Unicode, default

from ..internals.nbgrader import extracted_path
from ..model import Status
from . import lms_ids
from .sanitize import SAFE_ID, safe_file_name


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
            entries.append(
                Entry(
                    student,
                    Status.WRONG_NAME,
                    message=f"no {expected.name}; found {', '.join(others)} (rename it, or run `spamkit collect --fix-names`)",
                )
            )
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
    # Canvas marks a late submission with late_ (LATE_) but gives no time: recorded (lms_ids "late"), no time made up.
    "canvas": r".*/(?P<name>[^/_]+)_(?P<late>late_|LATE_)?(?P<student_id>\d+)_(?P<submission_id>\d+)_(?P<file_id>[^/]+)$",
    # Moodle "Download all submissions": Full Name_<participant id>_assignsubmission_file_<name>,
    # or the same as a folder when downloaded "in folders".
    "moodle": r".*/(?P<name>[^/]+?)_(?P<student_id>\d+)_assignsubmission_file_/?(?P<file_id>[^/]+)$",
}
_COPY_SUFFIX = r"(?:-\d+| ?\(\d+\)|_\d+| - Copy)?"


class LmsCollector(FileNameCollectorPlugin):
    """``zip_collect`` plugin: student and file from Canvas / Moodle file names.

    Besides matching ``named_regexp`` (a preset per LMS, or your own), it maps
    the names LMSs and browsers give to a resubmitted notebook
    (``spam_transformer-1.ipynb``, ``spam_transformer (2).ipynb``), or a
    student's only notebook, to the released notebook's name, so that
    nbgrader finds it. A student with several differently named notebooks
    keeps them as they are; grading then reports that student.
    """

    lms = Enum(
        ["canvas", "moodle", "custom"],
        "canvas",
        help="file naming of the download; 'custom' uses named_regexp as given",
    ).tag(config=True)
    notebook = Unicode("", help="the released notebook's name (default: the only released notebook)").tag(config=True)

    _plan: dict | None = None

    @default("named_regexp")
    def _named_regexp_default(self) -> str:
        return LMS_PATTERNS.get(self.lms, "")

    def _released_notebook(self) -> str:
        if self.notebook:
            return self.notebook
        app = self.parent
        released = Path(app.coursedir.format_path(app.coursedir.release_directory, ".", app.coursedir.assignment_id))
        names = sorted(p.stem for p in released.glob("*.ipynb"))
        return names[0] if len(names) == 1 else ""

    def _make_plan(self) -> dict:
        """Per extracted notebook file, the name it is collected as."""
        plan: dict = {}
        expected = self._released_notebook()
        if not expected or self.parent is None:
            return plan
        extracted = Path(extracted_path(self.parent, self.parent.extracted_directory))
        by_student: dict[str, list[tuple[str, str]]] = {}
        for path in sorted(extracted.rglob("*.ipynb")):
            match = re.match(self.named_regexp, str(path))
            if match:
                by_student.setdefault(match["student_id"], []).append((str(path), match["file_id"]))
        same = re.compile(re.escape(expected) + _COPY_SUFFIX + r"\.ipynb$")
        for files in by_student.values():
            if any(file_id == f"{expected}.ipynb" for _, file_id in files):
                continue
            variants = [path for path, file_id in files if same.match(file_id)]
            if len(variants) == 1:
                plan[variants[0]] = f"{expected}.ipynb"
            elif not variants and len(files) == 1:
                plan[files[0][0]] = f"{expected}.ipynb"
        return plan

    def collect(self, submitted_file: str):
        info = super().collect(submitted_file)
        if not info:
            return info
        if not SAFE_ID.fullmatch(info["student_id"]):  # would reach pages and tables as markup
            self.log.warning("Skipping %s: a student id may hold letters, digits and . _ @ + - only", submitted_file)
            return None
        info["file_id"] = safe_file_name(info["file_id"])
        self._record_lms_ids(submitted_file, info)
        if self._plan is None:
            self._plan = self._make_plan()
        renamed = self._plan.get(submitted_file)
        if renamed and renamed != info["file_id"]:
            self.log.warning("Collecting %s as %s", info["file_id"], renamed)
            info["file_id"] = renamed
        return info

    def _record_lms_ids(self, submitted_file: str, groups: dict) -> None:
        """Keep the LMS's own id of the student (``lms_ids``), for the grades going back."""
        if self.parent is None:
            return
        cd = self.parent.coursedir
        extracted = Path(extracted_path(self.parent, self.parent.extracted_directory))
        for lms, lms_id in lms_ids.lms_ids_of(groups, self.lms).items():
            lms_ids.record(
                Path(cd.root),
                cd.assignment_id,
                groups["student_id"],
                lms,
                lms_id,
                groups.get("name") or "",
                os.path.relpath(submitted_file, extracted),
                late=bool(groups.get("late")),
            )


def zip_collect(
    course_root: Path, assignment: str, archives: list[Path], lms: str, regexp: str = "", env: dict | None = None
) -> subprocess.CompletedProcess:
    """Copy LMS downloads into nbgrader's ``downloaded/<assignment>/archive`` and run zip_collect."""
    archive_dir = course_root / "downloaded" / assignment / "archive"
    archive_dir.mkdir(parents=True, exist_ok=True)
    for archive in archives:
        shutil.copy(archive, archive_dir / Path(archive).name)
    args = [
        sys.executable,
        "-m",
        "nbgrader",
        "zip_collect",
        assignment,
        "--force",
        "--collector=autograder.nbgrader_plugins.LmsCollector",
        f"--LmsCollector.lms={lms}",
    ]
    if regexp:
        args.append(f"--LmsCollector.named_regexp={regexp}")
    return subprocess.run(args, cwd=course_root, env={**os.environ, **(env or {})}, capture_output=True, text=True)
