"""The spamkit command line, in process: commands, settings from the command line, usage errors."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from kit_testing import course_env, open_course

from autograder import api, cli
from autograder.course.calibrate import Calibration
from autograder.errors import UsageError
from autograder.model import Status
from autograder.settings import Batch, Grading

COMMANDS = ("release", "collect", "grade", "feedback", "export", "report", "calibrate", "demo")


@pytest.mark.parametrize(
    "program", [[str(Path(sys.executable).with_name("spamkit"))], [sys.executable, "-m", "autograder"]]
)
def test_both_entry_points_list_the_commands(program, tmp_path):
    proc = subprocess.run(
        [*program, "--help"], cwd=tmp_path, env=course_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


def test_outside_a_course_root_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["grade", "--course-dir", str(tmp_path)])
    assert exited.value.code == 2
    assert "not a course root" in capsys.readouterr().err


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="neither a course root nor empty"):
        open_course(tmp_path, create=True)


def test_settings_from_the_command_line(tmp_path):
    root = open_course(tmp_path / "course", create=True).root
    assert sorted(p.name for p in root.iterdir()) == ["course_config.py", "nbgrader_config.py", "source"]
    course = api.open_course(root, cli.parse_overrides(["--Grading.val_auc_threshold=0.99", "--Batch.n_workers=3"]))
    assert Grading(config=course.config).val_auc_threshold == 0.99
    assert Batch(config=course.config).n_workers == 3
    assert course.coursedir.root == str(root.resolve())
    with pytest.raises(UsageError):
        cli.parse_overrides(["--workers", "3"])


def test_check_option_needs_graded_results(tmp_path, capsys):
    root = open_course(tmp_path / "course", create=True).root
    assert cli.main(["grade", "--check", "test_hidden_auc", "--course-dir", str(root)]) == 2
    said = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "no check 'test_hidden_auc'" in said and "nothing graded yet" in said
    assert cli.main(["grade", "--check", "test_hidden_auc", "--force", "--course-dir", str(root)]) == 2
    assert "--force" in capsys.readouterr().out


def test_calibrate_is_an_ordinary_subcommand(tmp_path, monkeypatch, capsys):
    root = open_course(tmp_path / "course", create=True).root
    seen = {}

    def fake_calibrate(course, runs, first_seed, margin, tolerance_floor, on_run):
        seen.update(
            root=course.root,
            runs=runs,
            first_seed=first_seed,
            margin=margin,
            floor=tolerance_floor,
            threshold=Grading(config=course.config).val_auc_threshold,
        )
        found = Calibration(seeds=[7, 8], margin=margin, current={"val_auc_threshold": 0.91})
        for seed, auc in ((7, 0.95), (8, 0.97)):
            run = {
                "seed": seed,
                "status": Status.OK,
                "seconds": 9.0,
                "failed": [],
                "reported_val_auc": auc,
                "val_auc": auc,
                "hidden_auc": auc,
                "honesty_gap": 0.0,
            }
            found.runs.append(run)
            on_run(run)
        found.stats = {
            "val_auc": {"n": 2, "min": 0.95, "p5": 0.951, "median": 0.96, "max": 0.97},
            "reported_val_auc": None,
            "hidden_auc": None,
            "honesty_gap": None,
        }
        found.recommended = {"val_auc_threshold": 0.93}
        return found

    monkeypatch.setattr(api, "calibrate", fake_calibrate)
    out = tmp_path / "calibration.json"
    code = cli.main(
        [
            "calibrate",
            "--course-dir",
            str(root),
            "--runs",
            "2",
            "--first-seed",
            "7",
            "--margin",
            "0.02",
            "--json",
            str(out),
            "--Grading.val_auc_threshold=0.96",
        ]
    )
    shown = capsys.readouterr().out
    assert code == 0
    assert seen == {
        "root": root.resolve(),
        "runs": 2,
        "first_seed": 7,
        "margin": 0.02,
        "floor": 0.005,
        "threshold": 0.96,
    }
    assert "seed    7: ok" in shown and "c.Grading.val_auc_threshold = 0.93" in shown
    assert "fails with seeds [7]" in shown  # 0.95 < the threshold given on the command line
    assert json.loads(out.read_text())["recommended"] == {"val_auc_threshold": 0.93}


def test_grade_renders_rows_and_exit_codes(tmp_path, monkeypatch, capsys):
    from autograder.course.gradebook import Row

    root = open_course(tmp_path / "course", create=True).root
    rows = [
        Row("ann", Status.GRADED, 20.0, 20.0, Status.OK, 9.5, executed=True),
        Row("ben", Status.UNREADABLE, 0.0, 20.0, message="spam_transformer.ipynb is not a readable notebook"),
        Row("cid", Status.GRADER_ERROR, message="KilledWorker"),
    ]
    monkeypatch.setattr(api, "grade_class", lambda course, *args: rows)
    assert cli.main(["grade", "--course-dir", str(root), "--no-progress"]) == 1  # a grader error
    shown = capsys.readouterr().out
    assert "graded" in shown and "corrupt notebook" in shown and "grader error" in shown
    assert "1 notebook(s) run now" in shown
    monkeypatch.setattr(api, "grade_class", lambda course, *args: rows[:2])
    assert cli.main(["grade", "--course-dir", str(root), "--no-progress"]) == 0


def test_the_grade_table_names_the_cell_that_stopped_and_the_limit():
    from rich.console import Console

    from autograder.course.gradebook import Row

    rows = [
        Row(
            "ann",
            Status.GRADED,
            11.0,
            20.0,
            Status.CELL_TIMEOUT,
            612.0,
            "cell `compile` stopped after 600 s (Sandbox.cell_timeout)",
        ),
        Row(
            "ben",
            Status.GRADED,
            0.0,
            20.0,
            Status.KERNEL_DIED,
            40.0,
            "the Python kernel died while cell `fit` was running",
        ),
        Row(
            "cid",
            Status.UP_TO_DATE,
            5.0,
            20.0,
            Status.TIMEOUT,
            901.0,
            "stopped after 900 s (Sandbox.notebook_timeout) while cell `[red]x[/red]` was running",
        ),
        Row("dan", Status.GRADED, 20.0, 20.0, Status.OK, 300.0, ""),
    ]
    console = Console(record=True, width=250, color_system="standard")
    console.print(cli.grades_table(rows, "t"))
    lines = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in console.export_text(clear=False).splitlines()
        if line.count("│") == 7
    }
    assert lines["ann"] == [
        "graded",
        "11 / 20",
        "cell_timeout",
        "612.0",
        "cell `compile` stopped after 600 s (Sandbox.cell_timeout)",
    ]
    assert lines["ben"][2:] == ["kernel_died", "40.0", "the Python kernel died while cell `fit` was running"]
    assert lines["cid"][2:] == [
        "timeout",
        "901.0",  # a cell label is data, never rich markup
        "stopped after 900 s (Sandbox.notebook_timeout) while cell `[red]x[/red]` was running",
    ]
    assert lines["dan"][2:] == ["ok", "300.0", ""]
    # graded, but the run did not end well: the status is yellow, not green
    colored = console.export_text(styles=True).splitlines()
    ann, dan = (next(line for line in colored if name in line) for name in ("ann", "dan"))
    assert "\x1b[33mgraded" in ann and "\x1b[32mgraded" in dan


# --- control characters in student text never reach the terminal -------------------

# ESC [2J clears the screen, OSC 52 writes the clipboard, OSC 8 hides a link, CR rewrites the line, BEL rings,
# U+009B is a one-character CSI, U+202E reverses what follows, U+2066 opens a bidi isolate.
HOSTILE = ("\x1b[2J", "\x1b]52;c;cHduZWQ=\x07", "\x1b]8;;http://x\x1b\\", "\r", "\x07", "\x9b", "\u202e", "\u2066")
HOSTILE_ID = "ann\x1b[2J\r\x07\x9b\u202e"
HOSTILE_TEXT = "cell `fit\x1b]52;c;cHduZWQ=\x07` failed\rall fine \x9b2J\u202eexe.txt\x1b]8;;http://x\x1b\\here"
NORMAL = "Zoë Łukasz 山田太郎 👩🏽‍💻 👨‍👩‍👧 🏴󠁧󠁢󠁳󠁣󠁴󠁿 café\tend"


def terminal_capture(console_class=None):
    from rich.console import Console

    return (console_class or Console)(file=io.StringIO(), force_terminal=True, width=250, color_system="standard")


def assert_no_control_characters(out: str) -> None:
    for hostile in HOSTILE:
        assert hostile not in out
    assert "\x1b]" not in out and "\x9b" not in out and "\r" not in out and "\x07" not in out
    assert not {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"} & set(out)
    left = without_colours(out)  # rich's own SGR colour codes are the only escapes left
    assert "\x1b" not in left
    assert not [c for c in left if unicodedata.category(c) in ("Cc", "Cs") and c != "\n"]


def without_colours(out: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", out)


def test_terminal_text_replaces_controls_with_visible_characters():
    from autograder.course.sanitize import terminal_text

    assert terminal_text("a\x1b[2Jb") == "a\u241b[2Jb"  # ESC shown as its Control Picture
    assert terminal_text("x\x07\ry\x7f\x00") == "x\u2407\u240dy\u2421\u2400"
    assert terminal_text("\x9b\x85\u202e\u2066\u2069\udcff") == "\ufffd" * 6  # C1, bidi, lone surrogate
    assert terminal_text("one\r\ntwo\n\tthree") == "one\ntwo\n\tthree"
    assert terminal_text(NORMAL) == NORMAL  # accents, CJK, emoji with ZWJ, modifiers and tag characters
    assert terminal_text("\u200d\u200c\u00ad\u200e\ufeff") == "\u200d\u200c\u00ad\u200e\ufeff"  # not controls
    cleaned = terminal_text(HOSTILE_TEXT)
    assert cleaned.isprintable() and "all fine" in cleaned and "exe.txt" in cleaned


def test_tables_show_student_text_without_control_characters():
    from autograder.course.gradebook import Row
    from autograder.course.intake import Entry
    from autograder.course.lms_export import Unlisted

    rows = [
        Row(HOSTILE_ID, Status.GRADED, 1.0, 2.0, Status.ERROR, 3.0, HOSTILE_TEXT, notes=["[red]x[/red]"]),
        Row(NORMAL.split()[2], Status.GRADED, 2.0, 2.0, Status.OK, 3.0, ""),
    ]
    entries = [Entry(HOSTILE_ID, Status.UNREADABLE, message=HOSTILE_TEXT), Entry("山田", Status.OK)]
    unlisted = [Unlisted("canvas", HOSTILE_ID, "\x1b[31m42", HOSTILE_TEXT, 1.0, "not in the roster\r!")]
    # the grade table shows a message's first line: Python's splitlines() ends it at the CR
    shown = {"grades": "` failed", "entries": "` failed\u240dall fine", "unlisted": "` failed\u240dall fine"}
    tables = {
        "grades": cli.grades_table(rows, "t"),
        "entries": cli.entries_table(entries, "t"),
        "unlisted": cli.unlisted_table(unlisted),
    }
    for name, table in tables.items():
        for console_class in (None, cli.TerminalConsole):  # the tables are clean for any Console
            console = terminal_capture(console_class)
            console.print(table)
            out = console.file.getvalue()
            assert_no_control_characters(out)
            plain = without_colours(out)
            assert "ann\u241b[2J" in plain and "\u2407\ufffd\ufffd" in plain  # shown, not acted on
            assert shown[name] in plain
    console = terminal_capture()
    console.print(cli.grades_table(rows, "t"))
    plain = without_colours(console.file.getvalue())
    assert "[red]x[/red]" in plain and "山田太郎" in plain  # markup stays text; CJK as it is


def test_every_print_of_the_cli_goes_through_the_clean_console(monkeypatch):
    from types import SimpleNamespace

    from rich.text import Text

    from autograder.course.intake import Entry

    assert isinstance(cli.console, cli.TerminalConsole)
    console = terminal_capture(cli.TerminalConsole)
    monkeypatch.setattr(cli, "console", console)
    found = api.Collected(
        entries=[Entry(HOSTILE_ID, Status.WRONG_NAME, message=HOSTILE_TEXT)],
        renamed=[f"{HOSTILE_ID}/{HOSTILE_TEXT}.ipynb -> {HOSTILE_ID}/spam_transformer.ipynb"],
        warnings=[f"[ZipCollectApp | WARNING] {HOSTILE_TEXT}"],
        late_untimed=[HOSTILE_ID],
    )
    from autograder.course.publish import Held

    fake_api = SimpleNamespace(
        collect=lambda *args, **kwargs: found,
        feedback=lambda course, students: ("feedback", {HOSTILE_ID: f"log: {HOSTILE_TEXT}"}),
        held_back=lambda course: {HOSTILE_ID: Held(HOSTILE_ID, "grader error", HOSTILE_TEXT)},
    )
    course = SimpleNamespace(assignment="spam_transformer")
    args = SimpleNamespace(zip=[], lms="canvas", regexp="", fix_names=True, student=[])
    assert cli.cmd_collect(fake_api, course, args) == 0
    assert cli.cmd_feedback(fake_api, course, args) == 1
    console.print(HOSTILE_TEXT, markup=False)
    console.print(Text(HOSTILE_TEXT, style="bold"), Text.from_markup("[red]x[/red]\x1b[2J"))
    out = console.file.getvalue()
    assert_no_control_characters(out)
    plain = without_colours(out)
    assert plain.count("all fine") == 7 and "renamed ann\u241b[2J" in plain and "x\u241b[2J" in plain
    assert "0 of 1 students have a notebook to grade." in plain
    assert "\x1b[1m" in out and "\x1b[31mx" in out  # styles survive the cleaning


def test_normal_text_is_printed_unchanged():
    plain_console, clean_console = terminal_capture(), terminal_capture(cli.TerminalConsole)
    for console in (plain_console, clean_console):
        console.print(NORMAL, markup=False)
        console.print(f"[green]{NORMAL}[/green]")
    assert clean_console.file.getvalue() == plain_console.file.getvalue()
    assert NORMAL.split("\t")[0] in clean_console.file.getvalue()  # rich expands the tab to its tab stop
