"""Submissions prepared ahead of nbgrader's autograde: sanitized as Autograde will, keyed as GradeSubmission will.

The batch grades submissions on Dask before nbgrader's autograde writes the
gradebook, so it must see each submission exactly as ``GradeSubmission``
will: the notebook after nbgrader's own sanitize preprocessors, the files
nbgrader copies into ``autograded/``, and the key of ``prepare_submission``
(the one function both call).
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
from .autograde import AutogradeWithJob
from . import intake


@dataclass
class Prepared:
    """One student's submission, ready to grade: what GradeSubmission will see."""

    student: str
    submission: Submission
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.submission.key


class Sanitizer:
    """nbgrader's sanitize step of autograde, built the way Autograde builds it."""

    def __init__(self, course):
        self.course = course
        self.converter = AutogradeWithJob(coursedir=course.coursedir, config=course.config)
        self.exporter = NotebookExporter(parent=self.converter, config=self.converter.config)
        for pp in self.converter.sanitize_preprocessors:
            self.exporter.register_preprocessor(pp)

    def notebook(self, path: Path) -> nbformat.NotebookNode:
        """The notebook as GradeSubmission receives it (written and read back, as nbgrader does)."""
        resources = self.converter.init_single_notebook_resources(str(path))
        output, _ = self.exporter.from_filename(str(path), resources=resources)
        return nbformat.reads(output, as_version=4)

    def prepare(self, entry: intake.Entry) -> Prepared:
        """The submission as GradeSubmission will find it in autograded/<student>/<assignment>/."""
        cd, assignment = self.course.coursedir, self.course.assignment
        nb = self.notebook(entry.notebook)
        submitted = cd.format_path(cd.submitted_directory, entry.student, assignment)
        source = cd.format_path(cd.source_directory, ".", assignment)
        exclude = {os.path.join(source, x) for x in self.converter.exclude_overwriting.get(assignment, [])}
        with tempfile.TemporaryDirectory(prefix="spamkit-files-") as tmp:
            for origin, names in ((submitted, find_all_files(submitted, cd.ignore + ["*.ipynb"])),
                                  (source, set(find_all_files(source, cd.ignore + ["*.ipynb"])) - exclude)):
                for name in names:
                    dest = Path(tmp) / os.path.relpath(name, origin)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.unlink(missing_ok=True)
                    shutil.copy(name, dest)
            submission = prepare_submission(nb, Path(tmp), self.course.notebook, self.course.job())
        return Prepared(entry.student, submission, list(entry.notes))
