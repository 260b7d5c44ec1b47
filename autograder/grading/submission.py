"""A submission as grading sees it, and the keys its result is stored under.

nbgrader's autograde copies the student's files and the assignment's
non-notebook source files into ``autograded/<student>/<assignment>/`` and
sanitizes the notebook; ``prepare_submission`` takes that notebook and
folder and returns what will run and its keys. The batch, which prepares
submissions ahead of nbgrader (to grade them on Dask), and ``GradeSubmission``,
inside nbgrader's autograde, both call it: the keys have one source.

The result store key names the job and the code that runs, normalised as
``identical.py`` allows (comments, blank lines, Markdown, outputs and metadata
left out): students who run identical code share it, and their code is run
once. ``exact_key`` names the code as written, for the runs that only an
exact twin may share (``identical.py``, rule 2).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .identical import code_key
from .job import GradingJob

MAX_STUDENT_FILES_BYTES = 20_000_000
# nbgrader's records of the submission (when; the secret its feedback is named by), not the student's files
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")


@dataclass
class Submission:
    """A sanitized notebook and the student's files, keyed by what will run."""

    nb_json: str
    files: dict[str, bytes]
    key: str  # its code (normalised) and files under this job: the result store key
    digest: str  # the submission alone (all cells and files), whatever the job
    exact_key: str = ""  # its code as written and files under this job
    code: str = ""  # digest of its code as written and files (what a stored result ran)


def student_files(folder: Path, notebook_name: str) -> dict[str, bytes]:
    """The student's own extra files next to the notebook (size-capped)."""
    files, total = {}, 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if (
            not path.is_file()
            or path.is_symlink()
            or rel in (f"{notebook_name}.ipynb", "spam_data.py", *NBGRADER_FILES)
        ):
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


def submission_keys(nb: nbformat.NotebookNode, files: dict[str, bytes], job: GradingJob) -> tuple[str, str, str]:
    """(key, exact key, exact code digest): what will run, under the job, normalised and as written."""
    normal, exact = code_key(nb.cells, files, frozenset(job.locked_code))
    return (
        hashlib.sha256(f"{job.digest}\0{normal}".encode()).hexdigest(),
        hashlib.sha256(f"{job.digest}\0exact\0{exact}".encode()).hexdigest(),
        exact,
    )


def submission_key(nb: nbformat.NotebookNode, files: dict[str, bytes], job: GradingJob) -> str:
    """Identifies what will run: the submission's code (normalised), its files and the job."""
    return submission_keys(nb, files, job)[0]


def prepare_submission(nb: nbformat.NotebookNode, folder: Path, notebook_name: str, job: GradingJob) -> Submission:
    """The sanitized notebook ``nb`` with the files of its autograded ``folder``, ready to grade under ``job``."""
    files = student_files(Path(folder), notebook_name)
    key, exact_key, code = submission_keys(nb, files, job)
    return Submission(nbformat.writes(nb), files, key, submission_digest(nb, files), exact_key, code)
