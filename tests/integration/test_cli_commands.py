"""The spamkit command line on real nbgrader: release in a new course, LMS intake, grading before release."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from kit_testing import ASSIGNMENT, course_env, make_course, open_course, release_notebook
from nbgrader.api import Gradebook

from autograder.course import intake
from autograder.model import Status


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=course_env(), capture_output=True, text=True, timeout=600)


def test_release_in_a_new_course(tmp_path):
    root = open_course(tmp_path / "course", create=True).root
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
    download = make_zip(
        tmp_path / "submissions.zip",
        {
            "doejane_12345_900001_spam_transformer-1.ipynb": nb,  # Canvas resubmission suffix
            "roejim_late_23456_900002_My Lab.ipynb": nb,  # late, renamed by the student, only notebook
            "leeann_34567_900003_a.ipynb": nb,  # two notebooks, neither the lab's name
            "leeann_34567_900004_b.ipynb": nb,
            "kimbo_45678_900005_spam_transformer.ipynb": nb[:100],  # cut-off upload
        },
    )
    proc = run([sys.executable, "-m", "autograder", "collect", "--zip", str(download), "--lms", "canvas"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = statuses(root)
    assert {s: e.status for s, e in found.items() if s.isdigit()} == {
        "12345": Status.OK,
        "23456": Status.OK,
        "34567": Status.WRONG_NAME,
        "45678": Status.UNREADABLE,
    }
    assert (root / "submitted" / "12345" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes() == nb
    assert sorted(p.name for p in (root / "submitted" / "34567" / ASSIGNMENT).iterdir()) == ["a.ipynb", "b.ipynb"]
    assert "wrong file name" in proc.stdout and "corrupt notebook" in proc.stdout


def test_collect_moodle_download(released, tmp_path):
    root = released
    nb = nbformat.writes(release_notebook(root)).encode()
    download = make_zip(
        tmp_path / "moodle.zip",
        {
            "Jane Doe_111_assignsubmission_file_spam_transformer.ipynb": nb,
            "Jim Roe_222_assignsubmission_file_/spam_transformer (1).ipynb": nb,  # "download in folders"
        },
    )
    proc = run([sys.executable, "-m", "autograder", "collect", "--zip", str(download), "--lms", "moodle"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = statuses(root)
    assert found["111"].status == Status.OK and found["222"].status == Status.OK


def test_grade_before_release_says_what_to_do(tmp_path):
    root = open_course(tmp_path / "course", create=True).root
    proc = run([sys.executable, "-m", "autograder", "grade", "--no-progress"], root)
    assert proc.returncode == 1
    assert "spamkit release" in proc.stdout


def test_grade_without_the_data_grades_nobody(released, tmp_path):
    """Data the grader cannot find is the course's problem: the batch stops before any student gets a 0."""
    root = tmp_path / "course"
    shutil.copytree(released, root)
    submitted = root / "submitted" / "jane" / ASSIGNMENT
    submitted.mkdir(parents=True)
    nbformat.write(release_notebook(root), submitted / f"{ASSIGNMENT}.ipynb")
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "--no-progress"],
        cwd=root,
        env=course_env({"SPAM_LAB_DATA_DIR": str(empty), "SPAM_LAB_CACHE": str(empty)}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())
    assert "no student was graded" in out and "DataNotFound" in out and "SPAM_LAB_DATA_DIR" in out
    assert "jane" not in out
    assert not list((root / ".kit").glob("results/*/*.json"))
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        assert gb.find_assignment(ASSIGNMENT).submissions == []


def test_grade_without_a_sandbox_grades_nobody(released, tmp_path):
    """No bubblewrap here (nor cgroup rights, nor the filter: the same check): the batch stops before anyone
    is graded, with one message, instead of a grader error for every student."""
    root = tmp_path / "course"
    shutil.copytree(released, root)
    submitted = root / "submitted" / "jane" / ASSIGNMENT
    submitted.mkdir(parents=True)
    nbformat.write(release_notebook(root), submitted / f"{ASSIGNMENT}.ipynb")
    tools = tmp_path / "bin"  # the venv's tools and util-linux, no bwrap
    tools.mkdir()
    for tool in ("prlimit", "taskset", "setpriv", "alembic", "jupyter"):
        found = shutil.which(tool, path=course_env()["PATH"])
        if found:
            (tools / tool).symlink_to(found)
    proc = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", "--no-progress"],
        cwd=root,
        env=course_env({"PATH": str(tools)}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())
    assert "bubblewrap (bwrap) is not installed" in out and "jane" not in out
    assert not list((root / ".kit").glob("results/*/*.json"))
