"""``spamkit``: the course's command line, on top of nbgrader.

Run it in a course root (the folder with ``course_config.py``), or pass
``--course-dir``. Every setting of course_config.py can be overridden the
nbgrader way, e.g. ``spamkit grade --Grading.val_auc_threshold=0.95``.

    spamkit demo                    release, example submissions, grade, exports, report
    spamkit release [--force]       nbgrader generate_assignment
    spamkit collect [--zip F --lms canvas|moodle] [--fix-names]
                                    take stock of submitted/ (and bring LMS downloads in)
    spamkit grade [--student S ...] [--force] [--scheduler tcp://host:8786] [--workers N]
                                    batch grading on Dask, gradebook through nbgrader autograde
    spamkit grade --check ID [--student S ...]
                                    run one check again on the kept evidence (no notebook runs)
    spamkit feedback [--student S]  nbgrader generate_feedback (hidden tests stripped)
    spamkit export [--upload]       grades.csv, checks.csv, Gradescope results.json, Canvas/Moodle import CSVs
                                    (--upload: the Canvas grades through Canvas' API too)
    spamkit report                  the class report (one HTML file)
    spamkit calibrate ...           thresholds from seeded runs of the reference solution

``python -m autograder`` is the same program.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from traitlets.config import Config
from traitlets.config.loader import KVArgParseConfigLoader

KIT_ROOT = Path(__file__).resolve().parent.parent
COURSE_FILES = ("course_config.py", "nbgrader_config.py")
console = Console(highlight=False)

class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course-dir", default=None, help="course root (default: the current folder)")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")

    parser = argparse.ArgumentParser(
        prog="spamkit", description="Release, collect, grade and report the spam-transformer lab (nbgrader).",
        epilog="Any --Class.trait=value sets a course_config.py setting for this run.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("release", parents=[common], help="generate the student version (nbgrader generate_assignment)")
    p.add_argument("--force", action="store_true", help="overwrite an existing release")

    p = sub.add_parser("collect", parents=[common], help="take stock of submissions; bring LMS downloads in")
    p.add_argument("--zip", action="append", default=[], type=Path, metavar="FILE",
                   help="an LMS download (zip, or a single file); repeatable")
    p.add_argument("--lms", choices=["canvas", "moodle", "custom"], default="canvas",
                   help="file naming of the download (custom: give --regexp)")
    p.add_argument("--regexp", default="", help="FileNameCollectorPlugin.named_regexp with student_id and file_id")
    p.add_argument("--fix-names", action="store_true",
                   help="rename a student's only notebook to the released notebook's name")

    p = sub.add_parser("grade", parents=[common], help="grade submissions in parallel, write the gradebook")
    p.add_argument("--student", action="append", default=[], metavar="ID", help="only this student; repeatable")
    p.add_argument("--force", action="store_true", help="run again even if unchanged since last graded")
    p.add_argument("--check", metavar="ID",
                   help="run one check again on the kept evidence (no notebook re-runs); e.g. test_hidden_auc")
    p.add_argument("--scheduler", default="", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--workers", type=int, default=0, help="local Dask workers (default: Batch.n_workers or cores)")

    p = sub.add_parser("feedback", parents=[common], help="feedback HTML per student (nbgrader generate_feedback)")
    p.add_argument("--student", action="append", default=[], metavar="ID")

    p = sub.add_parser("export", parents=[common],
                       help="grades.csv, checks.csv, Gradescope results.json, Canvas/Moodle grade import CSVs")
    p.add_argument("--upload", action="store_true",
                   help="also send the Canvas file's grades to Canvas (LmsExport.canvas_url, canvas_course_id; "
                        "token in CANVAS_API_TOKEN)")

    p = sub.add_parser("report", parents=[common], help="the class report (HTML)")
    p.add_argument("--output", type=Path, default=None, help="where to write it (default: exports/report.html)")

    sub.add_parser("calibrate", parents=[common], help="pass-thresholds from seeded reference runs",
                   add_help=False)

    p = sub.add_parser("demo", parents=[common],
                       help="in a course root (made if empty): release, example submissions, grade, export, report")
    p.add_argument("--force", action="store_true", help="replace existing example submissions and grade them again")
    p.add_argument("--workers", type=int, default=0)
    return parser


def parse_overrides(extra: list[str]) -> Config:
    bad = [a for a in extra if not (a.startswith("--") and "." in a.split("=", 1)[0])]
    if bad:
        raise UsageError(f"unrecognized arguments: {' '.join(bad)}")
    return KVArgParseConfigLoader(argv=extra, aliases={}, flags={}).load_config()


def open_course(course_dir: str | None, overrides: Config):
    from .batch import Course
    from .settings import load_course_config

    root = Path(course_dir or os.getcwd()).resolve()
    if not (root / "course_config.py").is_file():
        raise UsageError(f"{root} is not a course root (no course_config.py); use --course-dir, "
                         "or `spamkit demo --course-dir NEW_FOLDER` to make one")
    config = load_course_config(root)
    config.merge(overrides)
    return Course(root, config)


def progress_bar(disabled: bool) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=disabled or not console.is_terminal)


# --- commands ------------------------------------------------------------------

def cmd_release(course, args) -> int:
    outcome = course.api.generate_assignment(course.assignment, force=args.force, create=True)
    if not outcome["success"]:
        console.print(outcome.get("log", ""), outcome.get("error", ""), markup=False)
        console.print("[red]generate_assignment failed[/red]")
        return 1
    release = Path(course.coursedir.format_path(course.coursedir.release_directory, ".", course.assignment))
    console.print(f"Released [bold]{course.assignment}[/bold] to {release}")
    return 0


def cmd_collect(course, args) -> int:
    from . import intake

    if args.zip:
        proc = intake.zip_collect(course.root, course.assignment, args.zip, args.lms, args.regexp)
        if proc.returncode != 0:
            console.print(proc.stdout[-3000:], proc.stderr[-3000:], markup=False)
            console.print("[red]nbgrader zip_collect failed[/red]")
            return 1
        warnings = [ln for ln in proc.stderr.splitlines() if "WARNING" in ln]
        for line in warnings:
            console.print(f"[yellow]{line}[/yellow]", markup=True)
    if args.fix_names:
        for line in intake.fix_names(course.submitted_dir(), course.assignment, course.notebook):
            console.print(f"renamed {line}")
    entries = intake.inventory(course.submitted_dir(), course.assignment, course.notebook, course.roster())
    table = Table(title=f"Submissions of {course.assignment}")
    for col in ("Student", "Status", "Details"):
        table.add_column(col)
    for e in entries:
        style = "green" if e.status == intake.OK else "red"
        table.add_row(e.student, f"[{style}]{intake.STATUS_TEXT[e.status]}[/{style}]",
                      "; ".join(filter(None, [e.message, *e.notes])))
    console.print(table)
    ready = sum(e.status == intake.OK for e in entries)
    console.print(f"{ready} of {len(entries)} students have a notebook to grade.")
    return 0


def grades_table(rows, title: str) -> Table:
    from .batch import AUTOGRADE_FAILED, GRADED, GRADER_ERROR, UP_TO_DATE
    from .intake import STATUS_TEXT
    from .recheck import RECHECKED

    table = Table(title=title)
    table.add_column("Student", overflow="fold", max_width=24)
    table.add_column("Status", no_wrap=True)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("Run", no_wrap=True)
    table.add_column("Time (s)", justify="right")
    table.add_column("Details", overflow="fold")
    for r in rows:
        style = {GRADED: "green", RECHECKED: "green", UP_TO_DATE: "cyan", GRADER_ERROR: "red bold", AUTOGRADE_FAILED: "red bold"}.get(
            r.status, "yellow")
        run_style = "green" if r.run_status == "ok" else "red"
        score = "" if r.score is None else f"{r.score:g} / {r.max_score:g}"
        shown = r.message and (r.run_status != "ok" or r.status == RECHECKED)
        message = (r.message or "").strip().splitlines()[0][:160] if shown else ""
        details = "; ".join(filter(None, [message, *r.notes]))[:200]
        table.add_row(r.student, f"[{style}]{STATUS_TEXT.get(r.status, r.status)}[/{style}]", score,
                      f"[{run_style}]{r.run_status}[/{run_style}]" if r.run_status else "",
                      "" if not r.seconds else f"{r.seconds:.1f}", details, )
    return table


def run_batch(course, students, force, scheduler, workers, no_progress) -> list:
    from .batch import BatchGrader

    with progress_bar(no_progress) as progress:
        rows = BatchGrader(course, progress).grade(students=students or None, force=force,
                                                   scheduler=scheduler, n_workers=workers)
    return rows


def cmd_grade(course, args) -> int:
    from .batch import AUTOGRADE_FAILED, GRADER_ERROR

    if args.check:
        return cmd_recheck(course, args)
    rows = run_batch(course, args.student, args.force, args.scheduler, args.workers, args.no_progress)
    console.print(grades_table(rows, f"{course.assignment}: {len(rows)} students"))
    executed = sum(r.executed for r in rows)
    console.print(f"{executed} notebook(s) run now; the gradebook is {course.coursedir.db_url}")
    return 1 if any(r.status in (GRADER_ERROR, AUTOGRADE_FAILED) for r in rows) else 0


def cmd_recheck(course, args) -> int:
    from .batch import AUTOGRADE_FAILED, GRADER_ERROR
    from .recheck import NOT_RECHECKED, Rechecker, known_checks

    known = known_checks(course)
    if args.force or args.check not in known:
        why = ("--check runs one check on the kept evidence; --force re-runs whole notebooks: use one of them"
               if args.force else f"there is no check {args.check!r} in the graded results; checks: "
               + (", ".join(known) or "none (nothing graded yet)"))
        console.print(f"[red]{why}[/red]", markup=True)
        return 2
    with progress_bar(args.no_progress) as progress:
        rows = Rechecker(course, progress).recheck(args.check, args.student or None)
    console.print(grades_table(rows, f"{course.assignment}: {args.check} run again for {len(rows)} students"))
    return 1 if any(r.status in (NOT_RECHECKED, GRADER_ERROR, AUTOGRADE_FAILED) for r in rows) else 0


def cmd_feedback(course, args) -> int:
    failed = 0
    for student in args.student or [None]:
        outcome = course.api.generate_feedback(course.assignment, student_id=student, force=True)
        if not outcome["success"]:
            failed += 1
            console.print(outcome.get("log", "")[-3000:], outcome.get("error", ""), markup=False)
    folder = Path(course.coursedir.format_path(course.coursedir.feedback_directory, "*", course.assignment))
    console.print(f"Feedback written to {folder}" if not failed else "[red]generate_feedback failed[/red]")
    return 1 if failed else 0


def cmd_export(course, args) -> int:
    from .exports import export_all
    from .lms_export import summary_table

    lms = []
    for name, path in export_all(course, lms).items():
        console.print(f"{name:>13}: {path}")
    for files in lms:
        for lms_name, count in files.rows.items():
            console.print(f"{count} student(s) with a grade in the {lms_name} import file")
        if (table := summary_table(files)) is not None:
            console.print(table)
        for note in files.notes:
            console.print(f"note: {note}", style="yellow", markup=False)
        for error in files.errors:
            console.print(f"error: {error}", style="red", markup=False)
    if any(files.errors for files in lms):
        return 1
    if args.upload:
        from .canvas_upload import TOKEN_VARIABLE, UploadError, upload
        from .lms_export import LmsExport

        try:
            console.print(upload(LmsExport(config=course.config), lms[0], os.environ.get(TOKEN_VARIABLE, "")),
                          markup=False)
        except UploadError as exc:
            console.print(f"error: {exc}", style="red", markup=False)
            return 1
    return 0


def cmd_report(course, args) -> int:
    from .report import write_report

    console.print(f"Class report: {write_report(course, args.output)}")
    return 0


def cmd_calibrate(argv: list[str]) -> int:
    try:
        from . import calibrate
    except ImportError as exc:
        console.print(f"[red]calibration is not available: {exc}[/red]")
        return 1
    # the other commands' --course-dir is calibrate's --course
    argv = [("--course" + a[len("--course-dir"):]) if a.startswith("--course-dir") else a for a in argv]
    return calibrate.main(argv) or 0


def make_course_root(root: Path) -> None:
    """A new course root from the kit's own course (source notebook, configs)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(KIT_ROOT / "source", root / "source", ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True)
    for name in COURSE_FILES:
        shutil.copy(KIT_ROOT / name, root / name)
    console.print(f"Made a course root in {root}")


def cmd_demo(args, overrides: Config) -> int:
    from . import examples
    from .exports import export_all
    from .report import write_report

    root = Path(args.course_dir or os.getcwd()).resolve()
    if not (root / "course_config.py").is_file():
        if root.exists() and any(root.iterdir()):
            raise UsageError(f"{root} is neither a course root nor empty: give an empty or new --course-dir")
        make_course_root(root)
    course = open_course(str(root), overrides)
    release_nb = Path(course.coursedir.format_path(course.coursedir.release_directory, ".", course.assignment))
    release_nb = release_nb / f"{course.notebook}.ipynb"
    with course.gradebook() as gb:  # a fresh clone has release/ but no gradebook yet
        released = any(a.name == course.assignment for a in gb.assignments)
    if args.force or not release_nb.is_file() or not released:
        if cmd_release(course, argparse.Namespace(force=True)) != 0:
            return 1
    source_nb = Path(course.coursedir.format_path(course.coursedir.source_directory, ".", course.assignment))
    source_nb = source_nb / f"{course.notebook}.ipynb"
    made = []
    for name, data in examples.example_submissions(release_nb, source_nb).items():
        folder = course.submitted_dir() / f"demo-{name}" / course.assignment
        target = folder / f"{course.notebook}.ipynb"
        if target.exists() and not args.force:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        made.append(f"demo-{name}")
    with course.gradebook() as gb:
        gb.update_or_create_student("demo-absent")  # on the roster, never submitted
    console.print(f"Example submissions in {course.submitted_dir()}: "
                  + (", ".join(made) if made else "already there (use --force to remake)"))
    students = [f"demo-{n}" for n in (*examples.VARIANTS, "corrupt", "absent")]
    rows = run_batch(course, students, args.force, "", args.workers, args.no_progress)
    console.print(grades_table(rows, f"{course.assignment}: demo grades"))
    for name, path in export_all(course).items():
        console.print(f"{name:>13}: {path}")
    console.print(f"{'report':>13}: {write_report(course)}")
    return 0


COMMANDS = {"release": cmd_release, "collect": cmd_collect, "grade": cmd_grade, "feedback": cmd_feedback,
            "export": cmd_export, "report": cmd_report}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    if argv and argv[0] == "calibrate":
        return cmd_calibrate(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    try:
        overrides = parse_overrides(extra)
        if args.command == "demo":
            return cmd_demo(args, overrides)
        course = open_course(args.course_dir, overrides)
        return COMMANDS[args.command](course, args)
    except UsageError as exc:
        parser.error(str(exc))
    except RuntimeError as exc:
        from .batch import BatchError

        if not isinstance(exc, BatchError):
            raise
        console.print(f"[red]{exc}[/red]")
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]: run the same command again to finish what is left")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
