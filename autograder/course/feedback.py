"""What a feedback page may show: what each check said, never hidden test code or grader metadata.

``HideGraderInternals`` runs first in ``GenerateFeedback.preprocessors``
(nbgrader loads it as ``autograder.nbgrader_plugins.HideGraderInternals``).
"""

from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor

_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


class HideGraderInternals(NbGraderPreprocessor):
    """Feedback shows what each check said, never hidden test code or grader metadata."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.source = _HIDDEN.sub("", cell.source)
        cell.metadata.pop("kit", None)
        cell.metadata.pop("tags", None)
        return cell, resources
