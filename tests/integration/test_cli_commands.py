"""The spamkit command line: commands, settings, release, LMS intake."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import nbformat
import pytest
from kit_testing import ASSIGNMENT, REPO, course_env, make_course, release_notebook
from nbgrader.api import Gradebook

from autograder import cli
from autograder.course import intake
from autograder.settings import Batch, Grading

COMMANDS = ("release", "collect", "grade", "feedback", "export", "report", "calibrate", "demo")


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=course_env(), capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("program", [[str(Path(sys.executable).with_name("spamkit"))],
                                     [sys.executable, "-m", "autograder"]])
def test_both_entry_points_list_the_commands(program, tmp_path):
    proc = run([*program, "--help"], tmp_path)
    assert proc.returncode == 0
    for command in COMMANDS:
        assert command in proc.stdout


def test_outside_a_course_root_is_a_usage_error(tmp_path):
    proc = run([sys.executable, "-m", "autograder", "grade"], tmp_path)
    assert proc.returncode == 2
    assert "not a course root" in proc.stderr


def test_settings_from_the_command_line(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(REPO / "course_config.py", root)
    course = cli.open_course(str(root), cli.parse_overrides(["--Grading.val_auc_threshold=0.99",
                                                             "--Batch.n_workers=3"]))
    assert Grading(config=course.config).val_auc_threshold == 0.99
    assert Batch(config=course.config).n_workers == 3
    assert course.coursedir.root == str(root.resolve())
    with pytest.raises(cli.UsageError):
        cli.parse_overrides(["--workers", "3"])


def test_check_option_needs_graded_results(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    shutil.copy(REPO / "course_config.py", root)
    proc = run([sys.executable, "-m", "autograder", "grade", "--check", "test_hidden_auc"], root)
    assert proc.returncode == 2
    said = " ".join(proc.stdout.split())  # the console wraps long lines
    assert "no check 'test_hidden_auc'" in said and "nothing graded yet" in said


def test_calibrate_is_dispatched_lazily(monkeypatch):
    seen = []
    fake = types.ModuleType("autograder.course.calibrate")
    fake.main = lambda argv: seen.append(argv) or 7
    monkeypatch.setitem(sys.modules, "autograder.course.calibrate", fake)
    import autograder.course

    monkeypatch.setattr(autograder.course, "calibrate", fake, raising=False)
    assert cli.main(["calibrate", "--runs", "3"]) == 7
    assert cli.main(["calibrate", "--course-dir", "/x", "--course-dir=/y"]) == 7
    assert seen == [["--runs", "3"], ["--course", "/x", "--course=/y"]]


def test_release_in_a_new_course(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    shutil.copytree(REPO / "source", root / "source", ignore=shutil.ignore_patterns("__pycache__"))
    for name in cli.COURSE_FILES:
        shutil.copy(REPO / name, root / name)
    proc = run([sys.executable, "-m", "autograder", "release"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()
    assert (root / "release" / ASSIGNMENT / "spam_data.py").is_file()
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert [n.name for n in gb.find_assignment(ASSIGNMENT).notebooks] == [ASSIGNMENT]


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    return make_course(tmp_path_factory.mktemp("intake") / "course")


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def statuses(root: Path) -> dict[str, intake.Entry]:
    return {e.student: e for e in intake.inventory(root / "submitted", ASSIGNMENT, ASSIGNMENT)}


def test_collect_canvas_download(released, tmp_path):
    root = released
    nb = nbformat.writes(release_notebook(root)).encode()
    download = make_zip(tmp_path / "submissions.zip", {
        "doejane_12345_900001_spam_transformer-1.ipynb": nb,     # Canvas resubmission suffix
        "roejim_late_23456_900002_My Lab.ipynb": nb,            # late, renamed by the student, only notebook
        "leeann_34567_900003_a.ipynb": nb,                      # two notebooks, neither the lab's name
        "leeann_34567_900004_b.ipynb": nb,
        "kimbo_45678_900005_spam_transformer.ipynb": nb[:100],  # cut-off upload
    })
    proc = run([sys.executable, "-m", "autograder", "collect", "--zip", str(download), "--lms", "canvas"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = statuses(root)
    assert {s: e.status for s, e in found.items() if s.isdigit()} == {
        "12345": intake.OK, "23456": intake.OK, "34567": intake.WRONG_NAME, "45678": intake.UNREADABLE}
    assert (root / "submitted" / "12345" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes() == nb
    assert sorted(p.name for p in (root / "submitted" / "34567" / ASSIGNMENT).iterdir()) == ["a.ipynb", "b.ipynb"]
    assert "wrong file name" in proc.stdout and "corrupt notebook" in proc.stdout


def test_collect_moodle_download(released, tmp_path):
    root = released
    nb = nbformat.writes(release_notebook(root)).encode()
    download = make_zip(tmp_path / "moodle.zip", {
        "Jane Doe_111_assignsubmission_file_spam_transformer.ipynb": nb,
        "Jim Roe_222_assignsubmission_file_/spam_transformer (1).ipynb": nb,  # "download in folders"
    })
    proc = run([sys.executable, "-m", "autograder", "collect", "--zip", str(download), "--lms", "moodle"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = statuses(root)
    assert found["111"].status == intake.OK and found["222"].status == intake.OK


def test_grade_before_release_says_what_to_do(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    shutil.copytree(REPO / "source", root / "source", ignore=shutil.ignore_patterns("__pycache__"))
    for name in cli.COURSE_FILES:
        shutil.copy(REPO / name, root / name)
    proc = run([sys.executable, "-m", "autograder", "grade", "--no-progress"], root)
    assert proc.returncode == 1
    assert "spamkit release" in proc.stdout
