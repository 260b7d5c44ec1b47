"""Submissions prepared ahead of nbgrader's autograde: sanitized as Autograde will, keyed as GradeSubmission will.

The batch grades submissions on Dask before nbgrader's autograde writes the
gradebook, so it must see each submission exactly as ``GradeSubmission``
will: the notebook after nbgrader's own sanitize preprocessors, the files
nbgrader copies into ``autograded/``, and the key of ``prepare_submission``
(the one function both call).

In a batch the ``Sanitizer`` runs nbgrader's sanitize steps on the batch's
open gradebook session (``gradebook_session.py``), and the notebook it
prepared is the one the gradebook writer hands to the autograde steps: one
sanitize pass per student. A large batch prepares in processes of its own
(``prepare_in_processes``, ``BatchClient.prepare_processes``) while the
client writes grades: each process runs the same ``Sanitizer`` on a session
of its own that only reads (the assignment's source cells, once).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbgrader.utils import find_all_files

from ..grading.submission import Submission, prepare_submission
from . import intake
from .autograde import KIT, AutogradeWithJob, KitResources
from .gradebook_session import SessionGradebook, in_session


@dataclass
class Prepared:
    """One student's submission, ready to grade: what GradeSubmission will see."""

    student: str
    submission: Submission
    notes: list[str] = field(default_factory=list)
    path: Path | None = None  # the submitted notebook it was prepared from

    @property
    def key(self) -> str:
        return self.submission.key


def copy_assignment_files(course, converter: AutogradeWithJob, student: str, dest: Path) -> None:
    """The files nbgrader's autograde puts beside the notebook, into ``dest``: the student's submitted files,
    then the assignment's source files (less ``Autograde.exclude_overwriting``) over them."""
    cd, assignment = course.coursedir, course.assignment
    submitted = cd.format_path(cd.submitted_directory, student, assignment)
    source = cd.format_path(cd.source_directory, ".", assignment)
    exclude = {os.path.join(source, x) for x in converter.exclude_overwriting.get(assignment, [])}
    for origin, names in (
        (submitted, find_all_files(submitted, cd.ignore + ["*.ipynb"])),
        (source, set(find_all_files(source, cd.ignore + ["*.ipynb"])) - exclude),
    ):
        for name in names:
            target = Path(dest) / os.path.relpath(name, origin)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            shutil.copy(name, target)


class Sanitizer:
    """nbgrader's sanitize step of autograde, built the way Autograde builds it (on ``gradebook``, a batch's
    open session, if given)."""

    def __init__(self, course, gradebook: SessionGradebook | None = None, job=None):
        self.course = course
        self.gradebook = gradebook
        self.job = job or course.job()
        self.converter = AutogradeWithJob(coursedir=course.coursedir, config=course.config)
        self.exporter = NotebookExporter(parent=self.converter, config=self.converter.config)
        steps = self.converter.sanitize_preprocessors
        for pp in in_session(steps) if gradebook is not None else steps:
            self.exporter.register_preprocessor(pp)

    def notebook(self, path: Path) -> nbformat.NotebookNode:
        """The notebook as GradeSubmission receives it (written and read back, as nbgrader does)."""
        resources = self.converter.init_single_notebook_resources(str(path))
        if self.gradebook is not None:
            resources[KIT] = KitResources(gradebook=self.gradebook)
        output, _ = self.exporter.from_filename(str(path), resources=resources)
        return nbformat.reads(output, as_version=4)

    def prepare(self, entry: intake.Entry) -> Prepared:
        """The submission as GradeSubmission will find it in autograded/<student>/<assignment>/."""
        nb = self.notebook(entry.notebook)
        with tempfile.TemporaryDirectory(prefix="spamkit-files-") as tmp:
            copy_assignment_files(self.course, self.converter, entry.student, Path(tmp))
            submission = prepare_submission(nb, Path(tmp), self.course.notebook, self.job)
        return Prepared(entry.student, submission, list(entry.notes), Path(entry.notebook))


# --- preparation in processes of its own ---------------------------------------------------------------------

Outcome = tuple[intake.Entry, "Prepared | None", str, float]  # the entry, its submission or why not, seconds


def prepare_one(sanitizer: Sanitizer, entry: intake.Entry) -> Outcome:
    """``entry`` prepared, or the reason nbgrader rejects it; and the seconds it took."""
    started = time.monotonic()
    try:
        p = sanitizer.prepare(entry)
    except Exception as exc:  # noqa: BLE001 - nbgrader rejects the notebook: the batch reports it and goes on
        return entry, None, f"{type(exc).__name__}: {exc}"[:500], time.monotonic() - started
    return entry, p, "", time.monotonic() - started


_SANITIZER: Sanitizer | None = None  # in a preparation process: its own, on its own read-only session


def _start_preparer(root: str, config, job) -> None:
    from .course import Course
    from .schema_cache import cache_schema_checks

    global _SANITIZER
    cache_schema_checks()
    course = Course(Path(root), config)
    _SANITIZER = Sanitizer(course, SessionGradebook(course.coursedir.db_url, course.coursedir.course_id), job)


def _prepare_here(entry: intake.Entry) -> Outcome:
    try:
        return prepare_one(_SANITIZER, entry)
    finally:
        _SANITIZER.gradebook.commit()  # holds no read lock between notebooks (SQLite's writer must commit)


def prepare_in_processes(course, job, entries: Iterable[intake.Entry], processes: int) -> Iterator[Outcome]:
    """Each entry prepared in one of ``processes`` new processes (spawned: the client runs Dask's threads), in
    order, as they are ready."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        processes, mp_context=context, initializer=_start_preparer, initargs=(str(course.root), course.config, job)
    )
    try:
        yield from pool.map(_prepare_here, entries, chunksize=4)
    finally:  # a batch that stops early does not wait for the rest of the class to be prepared
        pool.shutdown(wait=True, cancel_futures=True)
