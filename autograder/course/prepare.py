"""Submissions prepared ahead of nbgrader's autograde: sanitized as Autograde will, keyed as GradeSubmission will.

The batch grades submissions on Dask before nbgrader's autograde writes the
gradebook, so it must see each submission exactly as ``GradeSubmission``
will: the notebook after nbgrader's own sanitize preprocessors, the files
nbgrader copies into ``autograded/``, and the key of ``prepare_submission``
(the one function both call).

In a batch the ``Sanitizer`` runs nbgrader's sanitize steps on the batch's
open gradebook session (``gradebook_session.py``), and the notebook it
prepared is the one the gradebook writer hands to the autograde steps: one
sanitize pass per student.
"""

from __future__ import annotations

import os
import shutil
import tempfile
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
    path: Path | None = None        # the submitted notebook it was prepared from

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
    for origin, names in ((submitted, find_all_files(submitted, cd.ignore + ["*.ipynb"])),
                          (source, set(find_all_files(source, cd.ignore + ["*.ipynb"])) - exclude)):
        for name in names:
            target = Path(dest) / os.path.relpath(name, origin)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            shutil.copy(name, target)


class Sanitizer:
    """nbgrader's sanitize step of autograde, built the way Autograde builds it (on ``gradebook``, a batch's
    open session, if given)."""

    def __init__(self, course, gradebook: SessionGradebook | None = None):
        self.course = course
        self.gradebook = gradebook
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
            submission = prepare_submission(nb, Path(tmp), self.course.notebook, self.course.job())
        return Prepared(entry.student, submission, list(entry.notes), Path(entry.notebook))
