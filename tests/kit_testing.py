"""Helpers the kit's tests share: a throw-away course, submissions, grading."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from autograder import examples
from autograder.examples import fill  # noqa: F401 - re-exported for the tests

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "spam_transformer"
SHARED_DATA = Path(os.environ.get("SPAM_LAB_DATA_DIR", REPO.parent / "shared" / "data"))
NBGRADER = [sys.executable, "-m", "nbgrader"]


def course_env(extra: dict | None = None) -> dict:
    """The environment of a test course: its own SQLite gradebook unless ``extra`` sets KIT_DB_URL."""
    env = {**os.environ, "SPAM_LAB_DATA_DIR": str(SHARED_DATA), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("KIT_DB_URL", None)
    env.update(extra or {})
    return env


def make_course(root: Path, env: dict | None = None) -> Path:
    """A fresh course root: the repo's source and config, its own gradebook (or env's KIT_DB_URL)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "source", root / "source", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("course_config.py", "nbgrader_config.py"):
        shutil.copy(REPO / name, root / name)
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force", env=env)
    return root


def nbgrader(root: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([*NBGRADER, *args], cwd=root, env=course_env(env), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def release_notebook(root: Path) -> nbformat.NotebookNode:
    return nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def source_answers(root: Path) -> dict[str, str]:
    """The reference solutions, without the solution markers."""
    return examples.source_answers(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")


def submit(root: Path, student: str, nb: nbformat.NotebookNode | bytes | str) -> Path:
    folder = root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{ASSIGNMENT}.ipynb"
    if isinstance(nb, (bytes, str)):
        target.write_bytes(nb if isinstance(nb, bytes) else nb.encode())
    else:
        nbformat.write(nb, target)
    return target


def summary(root: Path, student: str) -> dict:
    return json.loads((root / ".kit" / "results" / ASSIGNMENT / f"{student}.json").read_text())


def gradebook_scores(root: Path, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        notebook = gb.find_submission(ASSIGNMENT, student).notebooks[0]
        return {g.name: g.score for g in notebook.grades}
