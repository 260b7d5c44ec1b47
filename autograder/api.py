"""The kit as functions: everything ``spamkit`` does, for scripts and tests.

The command line parses arguments, calls these and renders what they return.

    from autograder import api

    course = api.open_course("path/to/course", {"Grading": {"hidden_auc_threshold": 0.96}})
    rows = api.grade_class(course, workers=2)          # one Row per student
    rows = api.recheck(course, "test_hidden_auc")      # one check again, no notebook runs
    api.export(course), api.report(course)

A ``course`` argument is an open ``Course`` or a course root's path.
Failures that end a command raise ``errors.KitError`` (with the exit code
the command line uses); a single student's failure never does: it is on that
student's ``Row``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from traitlets.config import Config

from .course import intake
from .course.batch import BatchGrader
from .course.calibrate import Calibration
from .course.course import Course, open_course
from .course.demo import Demo, run_demo
from .course.gradebook import Row
from .course.lms_export import LmsFiles
from .course.progress import Progress
from .course.recheck import Rechecker
from .errors import KitError

__all__ = [
    "open_course",
    "release",
    "collect",
    "grade_class",
    "recheck",
    "feedback",
    "export",
    "upload_canvas",
    "held_back",
    "feedback_to_lms",
    "report",
    "calibrate",
    "demo",
]


def _course(course: Course | str | os.PathLike) -> Course:
    return course if isinstance(course, Course) else open_course(course)


def release(course, force: bool = False) -> Path:
    """nbgrader generate_assignment: the folder the student version went to."""
    course = _course(course)
    outcome = course.release(force=force)
    if not outcome["success"]:
        raise KitError(f"nbgrader generate_assignment failed:\n{outcome.get('log', '')}{outcome.get('error', '')}")
    return course.folder("release")


@dataclass
class Collected:
    entries: list[intake.Entry]  # one per student, with a status
    renamed: list[str] = field(default_factory=list)  # notebooks renamed to the released name
    warnings: list[str] = field(default_factory=list)  # nbgrader zip_collect's warnings
    late_untimed: list[str] = field(default_factory=list)  # marked late by the LMS, no timestamp.txt


def collect(
    course, archives: list[Path] = (), lms: str = "canvas", regexp: str = "", fix_names: bool = False
) -> Collected:
    """Bring LMS downloads in (nbgrader zip_collect with the kit's LmsCollector), then take stock of submitted/."""
    course = _course(course)
    found = Collected(entries=[])
    if archives:
        proc = intake.zip_collect(course.root, course.assignment, list(archives), lms, regexp)
        if proc.returncode != 0:
            raise KitError(f"nbgrader zip_collect failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        found.warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
        from .course import lms_ids

        for student, entry in sorted(lms_ids.read_ids(course.root, course.assignment).items()):
            folder = course.folder("submitted", student)
            if any(e.get("late") for e in entry.values()) and not (folder / "timestamp.txt").is_file():
                found.late_untimed.append(student)
    if fix_names:
        found.renamed = intake.fix_names(course.submitted_dir(), course.assignment, course.notebook)
    found.entries = course.entries()
    return found


def grade_class(
    course,
    students: list[str] | None = None,
    force: bool = False,
    scheduler: str = "",
    workers: int = 0,
    progress: Progress | None = None,
) -> list[Row]:
    """Grade the class (or ``students``) on Dask and write the gradebook through nbgrader's autograde."""
    return BatchGrader(_course(course), progress).grade(
        students=students or None, force=force, scheduler=scheduler, n_workers=workers
    )


def check_workers(course, scheduler: str = "") -> dict[str, dict]:
    """Every worker of the course's cluster (``scheduler``, Batch.scheduler_address or Batch.cluster) as a
    grader: host, Python, kit version, grading code, sandbox strategy, cgroups, the job's digest, and why it
    may not grade ('' if it may). A batch vets its workers the same way and gives refused ones nothing."""
    import contextlib

    from .course import cluster
    from .settings import Batch

    course = _course(course)
    settings = Batch(config=course.config)
    if not (scheduler or settings.scheduler_address or settings.cluster):
        raise KitError("no cluster to check: give --scheduler, or set Batch.scheduler_address or Batch.cluster")
    course.grade_with(len(os.sched_getaffinity(0)))  # the job of a batch on a cluster (batch.BatchGrader)
    with contextlib.ExitStack() as stack:
        client = cluster.external_client(stack, scheduler or settings.scheduler_address, settings.cluster, course.root)
        return cluster.check_workers(client, course.job())


def recheck(course, check_id: str, students: list[str] | None = None, progress: Progress | None = None) -> list[Row]:
    """Run one check again on the evidence kept from the graded runs, and rewrite the gradebook."""
    return Rechecker(_course(course), progress).recheck(check_id, students or None)


def feedback(course, students: list[str] | None = None) -> tuple[Path, dict[str, str]]:
    """nbgrader generate_feedback (hidden tests stripped): the feedback folder, and each failure's log.

    No page is left for a student ``held_back`` names (a grader error, not graded yet): one nbgrader made
    from an older grade is removed, so that no release or LMS path sends it.
    """
    import shutil

    from .course.publish import held_back as held

    course = _course(course)
    failed = {}
    for student in students or [None]:
        outcome = course.api.generate_feedback(course.assignment, student_id=student, force=True)
        if not outcome["success"]:
            failed[student or "*"] = outcome.get("log", "")[-3000:] + outcome.get("error", "")
    top = course.folder("feedback", ".").parent
    for student in held(course):
        page = course.folder("feedback", student)
        if page.parent.parent == top and page.is_dir():
            shutil.rmtree(page)
    return course.folder("feedback", "*"), failed


def held_back(course) -> dict:
    """{student: publish.Held}: whose result no path sends to them (a grader error, not graded yet), and why."""
    from .course.publish import held_back as held

    return held(_course(course))


def feedback_to_lms(course, lms: str, force: bool = False):
    """Feedback pages to the LMS: ``moodle`` writes exports/moodle_feedback.zip, ``canvas`` posts a comment per
    student (token in CANVAS_API_TOKEN); a ``lms_feedback.FeedbackSent``."""
    from .course import lms_feedback
    from .course.canvas_upload import TOKEN_VARIABLE

    course = _course(course)
    if lms == "moodle":
        return lms_feedback.moodle_zip(course)
    if lms == "canvas":
        return lms_feedback.canvas_comments(course, os.environ.get(TOKEN_VARIABLE, ""), force)
    raise KitError(f"no LMS {lms!r}: canvas or moodle")


@dataclass
class Exported:
    paths: dict[str, Path]  # what was written, by name
    lms: LmsFiles  # the LMS import files: who is left out, notes, errors


def export(course) -> Exported:
    """grades.csv, checks.csv, Gradescope results.json per student, and the Canvas / Moodle import files."""
    from .course.exports import export_all

    lms: list[LmsFiles] = []
    paths = export_all(_course(course), lms)
    return Exported(paths, lms[0])


def upload_canvas(course, exported: Exported) -> str:
    """Send the Canvas import file's grades through Canvas' API (token in CANVAS_API_TOKEN); what was done."""
    from .course.canvas_upload import TOKEN_VARIABLE, upload
    from .course.lms_export import LmsExport

    return upload(LmsExport(config=_course(course).config), exported.lms, os.environ.get(TOKEN_VARIABLE, ""))


def report(course, dest: Path | None = None) -> Path:
    """The class report, one HTML file."""
    from .course.report import write_report

    return write_report(_course(course), dest)


def calibrate(
    course,
    runs: int = 20,
    first_seed: int | None = None,
    margin: float = 0.02,
    tolerance_floor: float = 0.005,
    on_run: Callable[[dict], None] | None = None,
) -> Calibration:
    """Thresholds from seeded runs of the reference solution."""
    from .course.calibrate import calibrate as run

    return run(_course(course), runs, first_seed, margin, tolerance_floor, on_run)


def demo(
    root,
    overrides: Config | dict | None = None,
    force: bool = False,
    workers: int = 0,
    progress: Progress | None = None,
) -> Demo:
    """Release, grade example submissions, export and report, in ``root`` (made if empty)."""
    return run_demo(root, Config(overrides) if overrides else None, force, workers, progress)
