"""Helpers the kit's tests share: a throw-away course, submissions, grading."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from traitlets.config import Config

from autograder.course import examples
from autograder.course.course import Course, path_with_venv_tools
from autograder.course.course import open_course as autograder_open_course
from autograder.course.examples import fill  # noqa: F401 - re-exported for the tests

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "spam_transformer"
# The data as a user's machine finds it (the lab's loader, source/<assignment>/spam_data.py): the folder
# SPAM_LAB_DATA_DIR names (CI sets it: offline), else the loader's cache (~/.cache/spam_lab, or
# SPAM_LAB_CACHE), else its download (SMS only), which lands in the cache. None: no folder is set.
DATA_DIR = Path(os.environ["SPAM_LAB_DATA_DIR"]) if os.environ.get("SPAM_LAB_DATA_DIR") else None
NBGRADER = [sys.executable, "-m", "nbgrader"]
SPAMKIT = [sys.executable, "-m", "autograder"]
DASK = Path(sys.executable).with_name("dask")


def lab_loader():
    """The lab's data loader, source/<assignment>/spam_data.py of this checkout (imported by its path, as
    ``spam_data``, replacing another copy such as the release's)."""
    path = REPO / "source" / ASSIGNMENT / "spam_data.py"
    loaded = sys.modules.get("spam_data")
    if loaded is not None and Path(loaded.__file__).resolve() == path:
        return loaded
    spec = importlib.util.spec_from_file_location("spam_data", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["spam_data"] = module
    spec.loader.exec_module(module)
    return module


def data_location() -> Path:
    """Where this machine keeps the raw data: DATA_DIR, else the loader's cache."""
    return DATA_DIR or lab_loader().cache_dir()


def data_env() -> dict:
    """SPAM_LAB_DATA_DIR for a process that loads the data, if one is set (else the loader's cache or download)."""
    return {"SPAM_LAB_DATA_DIR": str(DATA_DIR)} if DATA_DIR else {}


def course_env(extra: dict | None = None) -> dict:
    """The environment of a command run in a test course: its own SQLite gradebook unless ``extra`` sets
    KIT_DB_URL, the data as found (``data_env``)."""
    env = {
        **os.environ,
        **data_env(),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PATH": path_with_venv_tools(os.environ.get("PATH", "")),
    }
    env.pop("KIT_DB_URL", None)
    env.update(extra or {})
    return env


def open_course(root: Path, overrides: dict | None = None, *, create: bool = False, db_url: str = "") -> Course:
    """The test course in root (made from the repo's source and config with ``create``), its own SQLite
    gradebook unless ``db_url`` names one, with ``overrides`` over its course_config.py
    (e.g. ``{"Grading": {"hidden_auc_threshold": 0.99}}``)."""
    for name, value in data_env().items():
        os.environ.setdefault(name, value)
    config = Config({"CourseDirectory": {"db_url": db_url or f"sqlite:///{Path(root).resolve() / 'gradebook.db'}"}})
    config.merge(Config(overrides or {}))
    return autograder_open_course(root, config, create=create)


def make_course(root: Path, db_url: str = "") -> Path:
    """A fresh course root, released: the repo's source and config, its own gradebook (or ``db_url``'s)."""
    course = open_course(root, create=True, db_url=db_url)
    outcome = course.release(force=True)
    assert outcome["success"], f"generate_assignment failed:\n{outcome.get('log', '')}\n{outcome.get('error', '')}"
    return course.root


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


def autograded_scores(root: Path, student: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        notebook = gb.find_submission(ASSIGNMENT, student).notebooks[0]
        return sum(g.auto_score or 0.0 for g in notebook.grades if g.cell.cell_type == "code")


def submissions_in_gradebook(root: Path) -> dict[str, int]:
    """How many submissions of the assignment each student has in the gradebook."""
    from nbgrader.api import Gradebook, SubmittedAssignment

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        counts = {}
        for student in gb.students:
            counts[student.id] = (
                gb.db.query(SubmittedAssignment).filter(SubmittedAssignment.student_id == student.id).count()
            )
        return counts


def variant(root: Path, name: str) -> nbformat.NotebookNode:
    """One of the example submissions (autograder.course.examples.VARIANTS) of this course."""
    return examples.fill(release_notebook(root), {**source_answers(root), **examples.VARIANTS[name]})


def spamkit(
    root: Path, *args: str, check: bool = True, timeout: float = 1800, env: dict | None = None
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*SPAMKIT, *args, "--no-progress"],
        cwd=root,
        env=course_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"spamkit {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def events(root: Path) -> list[dict]:
    """The batch log of the course (.kit/log/<assignment>.jsonl)."""
    path = root / ".kit" / "log" / f"{ASSIGNMENT}.jsonl"
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def wait_for_event(root: Path, event: str, proc: subprocess.Popen, limit: float = 900) -> None:
    """Wait until the batch log has an ``event`` while ``proc`` (a running batch) is alive."""
    deadline = time.monotonic() + limit
    while not any(e["event"] == event for e in events(root)):
        assert proc.poll() is None, f"the batch ended before its first {event!r} event"
        assert time.monotonic() < deadline, f"no {event!r} event in {limit:g} s"
        time.sleep(0.2)


def start_batch(root: Path, env: dict | None = None) -> subprocess.Popen:
    """``spamkit grade --workers 1`` in a session of its own, to be killed with ``kill_batch``."""
    return subprocess.Popen(
        [*SPAMKIT, "grade", "--workers", "1", "--no-progress"],
        cwd=root,
        env=course_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_batch(proc: subprocess.Popen) -> None:
    """SIGKILL a batch started by ``start_batch``, then what is left of its process group."""
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        time.sleep(2)  # the local workers notice their parent is gone; clear what is left of the group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def start_scheduler(where: Path, env: dict) -> tuple[subprocess.Popen, str]:
    """A ``dask scheduler`` process on 127.0.0.1 in ``where``; the process and its address."""
    scheduler_file = where / "scheduler.json"
    proc = subprocess.Popen(
        [
            str(DASK),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        cwd=where,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if not scheduler_file.exists():
        proc.kill()
        raise RuntimeError(f"the dask scheduler wrote no {scheduler_file.name} in 60 s (exit code {proc.poll()})")
    return proc, json.loads(scheduler_file.read_text())["address"]
