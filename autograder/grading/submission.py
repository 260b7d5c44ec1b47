"""A submission as grading sees it, and the key its result is stored under.

nbgrader's autograde copies the student's files and the assignment's
non-notebook source files into ``autograded/<student>/<assignment>/`` and
sanitizes the notebook; ``prepare_submission`` takes that notebook and
folder and returns what will run and its key. The batch, which prepares
submissions ahead of nbgrader (to grade them on Dask), and ``GradeSubmission``,
inside nbgrader's autograde, both call it: the key has one source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .job import GradingJob

MAX_STUDENT_FILES_BYTES = 20_000_000


@dataclass
class Submission:
    """A sanitized notebook and the student's files, keyed by what will run."""

    nb_json: str
    files: dict[str, bytes]
    key: str                # the submission under this job: the result store key
    digest: str             # the submission alone (cells and files), whatever the job


def student_files(folder: Path, notebook_name: str) -> dict[str, bytes]:
    """The student's own extra files next to the notebook (size-capped)."""
    files, total = {}, 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or path.is_symlink() or rel in (f"{notebook_name}.ipynb", "spam_data.py"):
            continue
        if rel.endswith(".ipynb") or "/." in f"/{rel}":
            continue
        total += path.stat().st_size
        if total > MAX_STUDENT_FILES_BYTES:
            break
        files[rel] = path.read_bytes()
    return files


def submission_digest(nb: nbformat.NotebookNode, files: dict[str, bytes]) -> str:
    """Identifies the submission itself: cell sources and the student's files."""
    h = hashlib.sha256()
    for cell in nb.cells:
        h.update(f"{cell.cell_type}\0{cell.source}\0".encode())
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def submission_key(nb: nbformat.NotebookNode, files: dict[str, bytes], job: GradingJob) -> str:
    """Identifies what will run: the submission and the job."""
    return hashlib.sha256(f"{job.digest}\0{submission_digest(nb, files)}".encode()).hexdigest()


def prepare_submission(nb: nbformat.NotebookNode, folder: Path, notebook_name: str, job: GradingJob) -> Submission:
    """The sanitized notebook ``nb`` with the files of its autograded ``folder``, ready to grade under ``job``."""
    files = student_files(Path(folder), notebook_name)
    return Submission(nbformat.writes(nb), files, submission_key(nb, files, job), submission_digest(nb, files))
