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
    spamkit worker-check [--scheduler tcp://host:8786]
                                    can each Dask worker grade (kit version, sandbox, cgroups)?
    spamkit feedback [--student S] [--lms moodle|canvas] [--force]
                                    nbgrader generate_feedback (hidden tests stripped); --lms moodle: the
                                    Moodle feedback-files zip, --lms canvas: a comment per Canvas submission
    spamkit export [--upload]       grades.csv, checks.csv, Gradescope results.json, Canvas/Moodle import CSVs
                                    (--upload: the Canvas grades through Canvas' API too)
    spamkit report                  the class report (one HTML file)
    spamkit calibrate [--runs N] [--first-seed S] [--margin M] [--json OUT]
                                    thresholds from seeded runs of the reference solution
    spamkit --help-all              every setting of the kit, with its help and default

``python -m autograder`` is the same program. It only parses and renders:
the work is done by ``autograder.api``, which scripts and tests call too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from traitlets.config import Config
from traitlets.config.loader import KVArgParseConfigLoader

from .errors import KitError, UsageError
from .model import UNENFORCED_NOTE, Status


def terminal_text(text: str) -> str:
    """autograder.course.sanitize.terminal_text: text with its control characters replaced by visible ones."""
    from .course.sanitize import terminal_text as clean  # imported when first needed: bleach and nbconvert

    return clean(text)  # are not for `spamkit --help`


class TerminalConsole(Console):
    """A rich Console that writes no control character a student put in a text: everything spamkit prints
    goes through it. Student ids, file names, cell names, error texts and logs can hold ANSI escapes (ESC [,
    OSC 8 links, OSC 52 clipboard writes), CR, BEL, C1 controls or bidi overrides; rich's markup escaping
    does not touch them. Each string is cleaned by ``terminal_text`` before its markup is read (the
    placeholders are no markup characters), and each ``Text`` as it is rendered (a table cell, a pretty
    repr); rich's own cursor moves (the progress bar) are control segments and stay as they are."""

    def render_str(self, text: str, **kwargs) -> Text:
        return super().render_str(terminal_text(text), **kwargs)

    def render(self, renderable, options=None):
        if isinstance(renderable, Text):
            clean = terminal_text(renderable.plain)  # a Text holds no CR (rich drops it): one character for one
            if clean != renderable.plain:
                renderable = renderable.copy()
                renderable.plain = clean
        return super().render(renderable, options)


console = TerminalConsole(highlight=False)


def student_cell(text: str) -> str:
    """Student text as a table cell: no markup, no control characters (cleaned here, not only when printed,
    so the column is measured as it is shown, whatever Console prints the table)."""
    return escape(terminal_text(text))


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--course-dir", default=None, help="course root (default: the current folder)")
    common.add_argument("--no-progress", action="store_true", help="no progress bar")

    parser = argparse.ArgumentParser(
        prog="spamkit",
        description="Release, collect, grade and report the spam-transformer lab (nbgrader).",
        epilog="Any --Class.trait=value sets a course_config.py setting for this run; --help-all lists them.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("release", parents=[common], help="generate the student version (nbgrader generate_assignment)")
    p.add_argument("--force", action="store_true", help="overwrite an existing release")

    p = sub.add_parser("collect", parents=[common], help="take stock of submissions; bring LMS downloads in")
    p.add_argument(
        "--zip",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="an LMS download (zip, or a single file); repeatable",
    )
    p.add_argument(
        "--lms",
        choices=["canvas", "moodle", "custom"],
        default="canvas",
        help="file naming of the download (custom: give --regexp)",
    )
    p.add_argument("--regexp", default="", help="FileNameCollectorPlugin.named_regexp with student_id and file_id")
    p.add_argument(
        "--fix-names", action="store_true", help="rename a student's only notebook to the released notebook's name"
    )

    p = sub.add_parser("grade", parents=[common], help="grade submissions in parallel, write the gradebook")
    p.add_argument("--student", action="append", default=[], metavar="ID", help="only this student; repeatable")
    p.add_argument("--force", action="store_true", help="run again even if unchanged since last graded")
    p.add_argument(
        "--check",
        metavar="ID",
        help="run one check again on the kept evidence (no notebook re-runs); e.g. test_hidden_auc",
    )
    p.add_argument("--scheduler", default="", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--workers", type=int, default=0, help="local Dask workers (default: Batch.n_workers or cores)")

    p = sub.add_parser(
        "worker-check",
        parents=[common],
        help="can each Dask worker grade? (kit version, sandbox, cgroups); exit 1 if one cannot",
    )
    p.add_argument("--scheduler", default="", metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.5:8786")

    p = sub.add_parser("feedback", parents=[common], help="feedback HTML per student (nbgrader generate_feedback)")
    p.add_argument("--student", action="append", default=[], metavar="ID")
    p.add_argument(
        "--lms",
        action="append",
        default=[],
        choices=["moodle", "canvas"],
        help="then to the LMS: moodle = exports/moodle_feedback.zip (Upload multiple feedback files in "
        "a zip), canvas = each page as a comment on the student's Canvas submission",
    )
    p.add_argument("--force", action="store_true", help="--lms canvas: send pages already sent unchanged too")

    p = sub.add_parser(
        "export",
        parents=[common],
        help="grades.csv, checks.csv, Gradescope results.json, Canvas/Moodle grade import CSVs",
    )
    p.add_argument(
        "--upload",
        action="store_true",
        help="also send the Canvas file's grades to Canvas (LmsExport.canvas_url, canvas_course_id; "
        "token in CANVAS_API_TOKEN)",
    )

    p = sub.add_parser("report", parents=[common], help="the class report (HTML)")
    p.add_argument("--output", type=Path, default=None, help="where to write it (default: exports/report.html)")

    p = sub.add_parser("calibrate", parents=[common], help="pass-thresholds from seeded reference runs")
    p.add_argument("--runs", "-n", type=int, default=20, help="number of training seeds (default 20)")
    p.add_argument(
        "--first-seed",
        type=int,
        default=None,
        help="first seed; the others follow it (default: the grader's seed, Lab.seed)",
    )
    p.add_argument("--margin", type=float, default=0.02, help="subtracted from the lowest AUC (default 0.02)")
    p.add_argument(
        "--tolerance-floor",
        type=float,
        default=0.005,
        help="added to the largest honest gap for Grading.honesty_tolerance (default 0.005)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write every run and the summary here")

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="in a course root (made if empty): release, example submissions, grade, export, report",
    )
    p.add_argument("--force", action="store_true", help="replace existing example submissions and grade them again")
    p.add_argument("--workers", type=int, default=0)
    return parser


def parse_overrides(extra: list[str]) -> Config:
    bad = [a for a in extra if not (a.startswith("--") and "." in a.split("=", 1)[0])]
    if bad:
        raise UsageError(f"unrecognized arguments: {' '.join(bad)}")
    return KVArgParseConfigLoader(argv=extra, aliases={}, flags={}).load_config()


class ProgressBar:
    """A rich progress bar, as what a batch reports its progress to."""

    def __init__(self, disabled: bool):
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=disabled or not console.is_terminal,
        )
        self.task = None

    def __enter__(self) -> ProgressBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def start(self, total: int, text: str) -> None:
        self.task = self.bar.add_task(text, total=total)

    def advance(self) -> None:
        if self.task is not None:
            self.bar.update(self.task, advance=1)


# --- rendering -----------------------------------------------------------------

ROW_STYLE = {
    Status.GRADED: "green",
    Status.RECHECKED: "green",
    Status.UP_TO_DATE: "cyan",
    Status.GRADER_ERROR: "red bold",
    Status.AUTOGRADE_FAILED: "red bold",
}


def grades_table(rows, title: str) -> Table:
    table = Table(title=title)
    table.add_column("Student", overflow="fold", max_width=24)
    table.add_column("Status", no_wrap=True)
    table.add_column("Score", justify="right", no_wrap=True)
    table.add_column("Run", no_wrap=True)
    table.add_column("Time (s)", justify="right")
    table.add_column("Details", overflow="fold")
    for r in rows:
        style = ROW_STYLE.get(r.status, "yellow")
        if r.run_status not in (None, Status.OK) and style in ("green", "cyan"):  # graded, but a cell timed out, ...
            style = "yellow"
        run_style = "green" if r.run_status == Status.OK else "red"
        score = "" if r.score is None else f"{r.score:g} / {r.max_score:g}"
        shown = r.message and (r.run_status != Status.OK or r.status == Status.RECHECKED)
        message = (r.message or "").strip().splitlines()[0][:160] if shown else ""
        reused = f"identical code: graded from {r.reused_from}'s run" if r.reused_from else ""
        details = "; ".join(filter(None, [UNENFORCED_NOTE if r.unenforced else "", message, reused, *r.notes]))[:200]
        # student ids and messages are student-controlled text: never rich markup, never control characters
        table.add_row(
            student_cell(r.student),
            f"[{style}]{r.status.instructor}[/{style}]",
            score,
            f"[{run_style}]{r.run_status}[/{run_style}]" if r.run_status else "",
            "" if not r.seconds else f"{r.seconds:.1f}",
            student_cell(details),
        )
    return table


def entries_table(entries, title: str) -> Table:
    table = Table(title=title)
    for col in ("Student", "Status", "Details"):
        table.add_column(col)
    for e in entries:
        ok = e.status == Status.OK
        label = "ready to grade" if ok else e.status.instructor
        style = "green" if ok else "red"
        table.add_row(
            student_cell(e.student),
            f"[{style}]{label}[/{style}]",
            student_cell("; ".join(filter(None, [e.message, *e.notes]))),
        )
    return table


def unlisted_table(unlisted) -> Table:
    """The students not in the LMS import files, and why."""
    table = Table(title="Not in the LMS import files (also in lms_unlisted.csv)")
    for column in ("LMS", "Student", "LMS id", "Name", "Score", "Why"):
        table.add_column(column, overflow="fold")
    for u in unlisted:  # Text(): names are student text, never rich markup (nor control characters)
        table.add_row(
            u.lms,
            Text(terminal_text(u.student)),
            Text(terminal_text(u.lms_id)),
            Text(terminal_text(u.name)),
            "" if u.score is None else f"{u.score:g}",
            Text(terminal_text(u.reason)),
        )
    return table


def print_exports(written: dict) -> None:
    for name, path in written.items():
        console.print(f"{name:>13}: {path}")


# --- commands ------------------------------------------------------------------


def cmd_release(api, course, args) -> int:
    console.print(f"Released [bold]{course.assignment}[/bold] to {api.release(course, force=args.force)}")
    return 0


def cmd_collect(api, course, args) -> int:
    found = api.collect(course, args.zip, args.lms, args.regexp, fix_names=args.fix_names)
    for line in found.warnings:
        console.print(line, style="yellow", markup=False)
    if found.late_untimed:
        console.print(
            f"note: the LMS marked {len(found.late_untimed)} submission(s) late: "
            f"{', '.join(found.late_untimed)}. Its download holds no submission time, so no late penalty "
            "applies until submitted/<student>/<assignment>/timestamp.txt gives one (README: Late work)",
            style="yellow",
            markup=False,
        )
    for line in found.renamed:
        console.print(f"renamed {line}", markup=False)
    console.print(entries_table(found.entries, f"Submissions of {course.assignment}"))
    ready = sum(e.status == Status.OK for e in found.entries)
    console.print(f"{ready} of {len(found.entries)} students have a notebook to grade.")
    return 0


def cmd_grade(api, course, args) -> int:
    if args.check:
        return cmd_recheck(api, course, args)
    with ProgressBar(args.no_progress) as progress:
        rows = api.grade_class(course, args.student, args.force, args.scheduler, args.workers, progress)
    console.print(grades_table(rows, f"{course.assignment}: {len(rows)} students"))
    executed = sum(r.executed for r in rows)
    shared = sum(bool(r.reused_from) and r.status == Status.GRADED for r in rows)
    also = f", {shared} graded from a classmate's run of identical code" if shared else ""
    console.print(f"{executed} notebook(s) run now{also}; the gradebook is {course.coursedir.db_url}")
    return 1 if any(r.status in (Status.GRADER_ERROR, Status.AUTOGRADE_FAILED) for r in rows) else 0


def cmd_worker_check(api, course, args) -> int:
    reports = api.check_workers(course, args.scheduler)
    table = Table(title=f"{len(reports)} Dask worker(s) for {course.assignment}")
    for col in ("Worker", "Host", "Python", "Kit", "Grading code", "Sandbox", "Cgroups", "Verdict"):
        table.add_column(col, overflow="fold")
    for address, r in sorted(reports.items()):
        verdict = f"[red]refused[/red]: {escape(r['refused'])}" if r["refused"] else "[green]may grade[/green]"
        table.add_row(
            address,
            r.get("host", ""),
            r.get("python", ""),
            r.get("kit_version", ""),
            (r.get("grading_code") or "")[:12],
            r.get("sandbox") or "",
            r.get("cgroups") or "",
            verdict,
        )
    console.print(table)
    job = next((r["job"] for r in reports.values() if r.get("job")), "")
    console.print(f"job digest {job[:16]}; a batch gives notebooks only to the workers that may grade")
    return 1 if not reports or any(r["refused"] for r in reports.values()) else 0


def cmd_recheck(api, course, args) -> int:
    if args.force:
        console.print(
            "--check runs one check on the kept evidence; --force re-runs whole notebooks: use one of them",
            style="red",
            markup=False,
        )
        return 2
    with ProgressBar(args.no_progress) as progress:
        rows = api.recheck(course, args.check, args.student, progress)
    console.print(grades_table(rows, f"{course.assignment}: {args.check} run again for {len(rows)} students"))
    failed = (Status.NOT_RECHECKED, Status.GRADER_ERROR, Status.AUTOGRADE_FAILED)
    return 1 if any(r.status in failed for r in rows) else 0


def held_table(held) -> Table:
    """Students whose result is not sent to them, and why (also in exports/held_back.csv)."""
    table = Table(title="Not sent to the student (no grade, no feedback): grader errors and work not graded yet")
    for column in ("Student", "Status", "Why"):
        table.add_column(column, overflow="fold")
    for h in sorted(held.values(), key=lambda h: h.student):
        table.add_row(Text(terminal_text(h.student)), h.status, Text(terminal_text(h.reason)))
    return table


def cmd_feedback(api, course, args) -> int:
    folder, failed = api.feedback(course, args.student)
    for log in failed.values():
        console.print(log, markup=False)
    console.print(f"Feedback written to {folder}" if not failed else "[red]generate_feedback failed[/red]")
    held = api.held_back(course)
    if held:
        console.print(held_table(held))
    if failed:
        return 1
    for lms in dict.fromkeys(args.lms):
        out = api.feedback_to_lms(course, lms, args.force)
        if lms == "moodle":
            console.print(
                f"{len(out.sent)} feedback page(s) in {out.path}: upload it in the assignment's View all "
                "submissions → Grading action → Upload multiple feedback files in a zip",
                markup=False,
            )
        else:
            console.print(
                f"{len(out.sent)} feedback comment(s) posted to Canvas"
                + (
                    f", {len(out.unchanged)} unchanged and not sent again (--force sends them)" if out.unchanged else ""
                ),
                markup=False,
            )
        if out.unlisted:
            table = unlisted_table(out.unlisted)
            table.title = f"No feedback to {lms.capitalize()} for these (also in {out.unlisted_csv})"
            console.print(table)
        for student, why in sorted(out.failed.items()):
            console.print(f"error: Canvas feedback for {student}: {why}", style="red", markup=False)
        if out.failed:
            return 1
    return 0


def cmd_export(api, course, args) -> int:
    exported = api.export(course)
    print_exports(exported.paths)
    lms = exported.lms
    for lms_name, count in lms.rows.items():
        console.print(f"{count} student(s) with a grade in the {lms_name} import file")
    if lms.unlisted:
        console.print(unlisted_table(lms.unlisted))
    held = api.held_back(course)
    if held:
        console.print(held_table(held))
        console.print(
            f"These get no Gradescope results.json and no LMS grade; listed in {exported.paths['held_back']}",
            markup=False,
        )
    for note in lms.notes:
        console.print(f"note: {note}", style="yellow", markup=False)
    for error in lms.errors:
        console.print(f"error: {error}", style="red", markup=False)
    if lms.errors:
        return 1
    if args.upload:
        console.print(api.upload_canvas(course, exported), markup=False)
    return 0


def cmd_report(api, course, args) -> int:
    console.print(f"Class report: {api.report(course, args.output)}")
    return 0


def cmd_calibrate(api, course, args) -> int:
    from .course.calibrate import FIGURES
    from .settings import Grading, Sandbox

    lab = course.lab
    console.print(
        f"Calibrating {lab.assignment} ({lab.dataset}) on {args.runs} seeds, sandbox "
        f"{Sandbox(config=course.config).mode}; the grader's seed is {lab.seed}."
    )

    def show(run: dict) -> None:
        figures = "  ".join(f"{k}={run[k]:.4f}" for k in FIGURES if isinstance(run[k], (int, float)))
        failed = f"  failed: {', '.join(run['failed'])}" if run["failed"] else ""
        console.print(f"  seed {run['seed']:>4}: {run['status']:<6} {run['seconds']:6.1f}s  {figures}{failed}")

    found = api.calibrate(course, args.runs, args.first_seed, args.margin, args.tolerance_floor, on_run=show)
    table = Table(title=f"Reference solution over {len(found.runs)} seeds")
    for column in ("figure", "n", "min", "p5", "median", "max"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name, label in FIGURES.items():
        s = found.stats[name]
        if s:
            table.add_row(label, str(s["n"]), *(f"{s[k]:.4f}" for k in ("min", "p5", "median", "max")))
    console.print(table)
    seconds = [r["seconds"] for r in found.runs]
    console.print(
        f"Grading seconds per run: min {min(seconds):.1f}, median {statistics.median(seconds):.1f}, "
        f"max {max(seconds):.1f}"
    )
    if found.unfinished:
        console.print(
            f"[red]Runs that did not finish: seeds {found.unfinished}; fix these before trusting the figures.[/red]"
        )
    console.print("Put in course_config.py (current values in brackets):")
    for key, value in found.recommended.items():
        console.print(f"  c.Grading.{key} = {value:g}    [{found.current[key]:g}]", markup=False)
    failing = found.failing_now(Grading(config=course.config))
    if failing:
        console.print(f"[red]Under the current thresholds the reference solution fails with seeds {failing}.[/red]")
    if args.json:
        args.json.write_text(json.dumps(found.to_dict(), indent=1))
    return 1 if found.unfinished else 0


def cmd_demo(api, args, overrides: Config) -> int:
    with ProgressBar(args.no_progress) as progress:
        demo = api.demo(args.course_dir or os.getcwd(), overrides, args.force, args.workers, progress)
    course = demo.course
    if demo.made_root:
        console.print(f"Made a course root in {course.root}")
    if demo.released:
        console.print(f"Released [bold]{course.assignment}[/bold] to {course.folder('release')}")
    console.print(
        f"Example submissions in {course.submitted_dir()}: "
        + (", ".join(demo.submitted) if demo.submitted else "already there (use --force to remake)")
    )
    console.print(grades_table(demo.rows, f"{course.assignment}: demo grades"))
    print_exports(demo.exports)
    console.print(f"{'report':>13}: {demo.report}")
    return 0


COMMANDS = {
    "release": cmd_release,
    "collect": cmd_collect,
    "grade": cmd_grade,
    "feedback": cmd_feedback,
    "export": cmd_export,
    "report": cmd_report,
    "calibrate": cmd_calibrate,
    "worker-check": cmd_worker_check,
}


def setting_classes() -> list[type]:
    """The kit's configurable classes: every setting a course_config.py can give, besides nbgrader's own."""
    from . import nbgrader_plugins, settings
    from .course import exports, gradebook, intake, late, lms_export, sanitize
    from .hub import on_submit
    from .hub import settings as hub_settings

    return [
        settings.Lab,
        settings.Grading,
        settings.Sandbox,
        settings.Batch,
        gradebook.BatchClient,
        nbgrader_plugins.GradeSubmission,
        exports.Exports,
        lms_export.LmsExport,
        intake.LmsCollector,
        sanitize.SanitizeStudentContent,
        sanitize.FeedbackExporter,
        late.LateWork,
        late.LatePenalty,
        hub_settings.CourseHub,
        on_submit.OnSubmit,
    ]


def help_all() -> str:
    """Every kit setting with its help and default (``spamkit --help-all``); nbgrader's own settings:
    ``nbgrader <command> --help-all``."""
    parts = ["The kit's settings (course_config.py: c.Class.name = value; or --Class.name=value):", ""]
    for cls in setting_classes():
        parts += [f"{cls.__name__} ({cls.__module__})"]
        parts += [cls.class_get_trait_help(trait) for trait in cls.class_own_traits(config=True).values()]
        parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--help-all" in argv:
        print(help_all())
        return 0
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    from . import api  # after parsing: `spamkit --help` needs no nbgrader

    try:
        overrides = parse_overrides(extra)
        if args.command == "demo":
            return cmd_demo(api, args, overrides)
        course = api.open_course(args.course_dir, overrides)
        return COMMANDS[args.command](api, course, args)
    except UsageError as exc:
        parser.error(terminal_text(str(exc)))  # argparse writes to stderr itself
    except KitError as exc:
        console.print(str(exc), style="red", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]: run the same command again to finish what is left")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
