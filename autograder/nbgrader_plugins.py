"""Every class of the kit that nbgrader loads, by dotted path ``autograder.nbgrader_plugins.<class>``.

Only names, each defined where its work is done:

- ``GradeSubmission`` (``course/autograde.py``) takes the place of nbgrader's
  ``Execute`` in ``Autograde.autograde_preprocessors``: sandbox + hidden
  checks, each test cell's report and partial score;
- ``SanitizeStudentContent`` and ``FeedbackExporter`` (``course/sanitize.py``):
  student content is data, never markup;
- ``HideGraderInternals`` (``course/feedback.py``), first in
  ``GenerateFeedback.preprocessors``;
- ``CsvExport`` (``nbgrader export --exporter=...``, ``course/exports.py``) and
  ``LmsCollector`` (``nbgrader zip_collect --collector=...``, ``course/intake.py``);
- ``LatePenalty`` (``c.AssignLatePenalties.plugin_class``, ``course/late.py``).

``AutogradeWithJob`` (``course/autograde.py``) is nbgrader's ``Autograde`` as
the kit runs it, handing the batch's GradingJob to ``GradeSubmission``.
"""

from __future__ import annotations

from .course.autograde import AutogradeWithJob, GradeSubmission
from .course.exports import CsvExport
from .course.feedback import HideGraderInternals
from .course.intake import LmsCollector
from .course.late import LatePenalty
from .course.sanitize import FeedbackExporter, SanitizeStudentContent

__all__ = [
    "GradeSubmission",
    "HideGraderInternals",
    "CsvExport",
    "LmsCollector",
    "AutogradeWithJob",
    "SanitizeStudentContent",
    "FeedbackExporter",
    "LatePenalty",
]
