"""The spamkit command line, in process: commands, settings from the command line, usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from kit_testing import course_env, open_course

from autograder import api, cli
from autograder.course.calibrate import Calibration
from autograder.errors import UsageError
from autograder.model import Status
from autograder.settings import Batch, Grading

COMMANDS = ("release", "collect", "grade", "feedback", "export", "report", "calibrate", "demo")


@pytest.mark.parametrize("program", [[str(Path(sys.executable).with_name("spamkit"))],
                                     [sys.executable, "-m", "autograder"]])
def test_both_entry_points_list_the_commands(program, tmp_path):
    proc = subprocess.run([*program, "--help"], cwd=tmp_path, env=course_env(), capture_output=True, text=True,
                          timeout=60)
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
        seen.update(root=course.root, runs=runs, first_seed=first_seed, margin=margin, floor=tolerance_floor,
                    threshold=Grading(config=course.config).val_auc_threshold)
        found = Calibration(seeds=[7, 8], margin=margin, current={"val_auc_threshold": 0.91})
        for seed, auc in ((7, 0.95), (8, 0.97)):
            run = {"seed": seed, "status": Status.OK, "seconds": 9.0, "failed": [], "reported_val_auc": auc,
                   "val_auc": auc, "hidden_auc": auc, "honesty_gap": 0.0}
            found.runs.append(run)
            on_run(run)
        found.stats = {"val_auc": {"n": 2, "min": 0.95, "p5": 0.951, "median": 0.96, "max": 0.97},
                       "reported_val_auc": None, "hidden_auc": None, "honesty_gap": None}
        found.recommended = {"val_auc_threshold": 0.93}
        return found

    monkeypatch.setattr(api, "calibrate", fake_calibrate)
    out = tmp_path / "calibration.json"
    code = cli.main(["calibrate", "--course-dir", str(root), "--runs", "2", "--first-seed", "7", "--margin", "0.02",
                     "--json", str(out), "--Grading.val_auc_threshold=0.96"])
    shown = capsys.readouterr().out
    assert code == 0
    assert seen == {"root": root.resolve(), "runs": 2, "first_seed": 7, "margin": 0.02, "floor": 0.005,
                    "threshold": 0.96}
    assert "seed    7: ok" in shown and "c.Grading.val_auc_threshold = 0.93" in shown
    assert "fails with seeds [7]" in shown  # 0.95 < the threshold given on the command line
    assert json.loads(out.read_text())["recommended"] == {"val_auc_threshold": 0.93}


def test_grade_renders_rows_and_exit_codes(tmp_path, monkeypatch, capsys):
    from autograder.course.gradebook import Row

    root = open_course(tmp_path / "course", create=True).root
    rows = [Row("ann", Status.GRADED, 20.0, 20.0, Status.OK, 9.5, executed=True),
            Row("ben", Status.UNREADABLE, 0.0, 20.0, message="spam_transformer.ipynb is not a readable notebook"),
            Row("cid", Status.GRADER_ERROR, message="KilledWorker")]
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

    rows = [Row("ann", Status.GRADED, 11.0, 20.0, Status.CELL_TIMEOUT, 612.0,
                "cell `compile` stopped after 600 s (Sandbox.cell_timeout)"),
            Row("ben", Status.GRADED, 0.0, 20.0, Status.KERNEL_DIED, 40.0,
                "the Python kernel died while cell `fit` was running"),
            Row("cid", Status.UP_TO_DATE, 5.0, 20.0, Status.TIMEOUT, 901.0,
                "stopped after 900 s (Sandbox.notebook_timeout) while cell `[red]x[/red]` was running"),
            Row("dan", Status.GRADED, 20.0, 20.0, Status.OK, 300.0, "")]
    console = Console(record=True, width=250, color_system="standard")
    console.print(cli.grades_table(rows, "t"))
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in console.export_text(clear=False).splitlines() if line.count("│") == 7}
    assert lines["ann"] == ["graded", "11 / 20", "cell_timeout", "612.0",
                            "cell `compile` stopped after 600 s (Sandbox.cell_timeout)"]
    assert lines["ben"][2:] == ["kernel_died", "40.0", "the Python kernel died while cell `fit` was running"]
    assert lines["cid"][2:] == ["timeout", "901.0",  # a cell label is data, never rich markup
                                "stopped after 900 s (Sandbox.notebook_timeout) while cell `[red]x[/red]` was running"]
    assert lines["dan"][2:] == ["ok", "300.0", ""]
    # graded, but the run did not end well: the status is yellow, not green
    colored = console.export_text(styles=True).splitlines()
    ann, dan = (next(line for line in colored if name in line) for name in ("ann", "dan"))
    assert "\x1b[33mgraded" in ann and "\x1b[32mgraded" in dan
