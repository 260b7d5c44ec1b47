"""The course's settings: what this course changes, nothing else.

nbgrader reads it through nbgrader_config.py (nbgrader has no --config flag),
and the kit reads it with autograder.settings.load_course_config().

Every other setting has its default in one place, the kit's code
(``autograder/settings.py`` for the lab, the thresholds, the sandbox limits
and Dask): ``spamkit --help-all`` lists each with its help and default, and
``nbgrader autograde --help-all`` lists nbgrader's. The calibrated thresholds
are those defaults; set ``c.Grading.*`` here only to grade differently from
them. Every value can be overridden on the command line too, e.g.
``--Grading.val_auc_threshold=0.95``.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 - provided by traitlets when this file is loaded
COURSE_ROOT = Path(__file__).resolve().parent

# --- nbgrader ---------------------------------------------------------------
c.CourseDirectory.course_id = "spam-transformer-lab"
c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.db_url = os.environ.get("KIT_DB_URL", f"sqlite:///{COURSE_ROOT / 'gradebook.db'}")
c.ClearSolutions.code_stub = {
    "python": '# YOUR CODE HERE\nraise NotImplementedError("Replace this line with your code.")'
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Only `nbgrader validate` (and the assignment list's Validate button) runs
# nbgrader's Execute: grading runs GradeSubmission below, bounded by
# Sandbox.cell_timeout and Sandbox.notebook_timeout. nbgrader's default of 30 s
# would stop model.fit, so validate gets the grader's cell time.
c.Execute.timeout = 600
# TensorFlow and Python warnings write to stderr, and nbgrader gives 0 to a
# test cell with any stderr output: drop such lines before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"(?m)^(WARNING|I0000|W0000|E0000|.*Warning:|  warnings\.warn|.*oneDNN)"
c.Autograde.autograde_preprocessors = [
    "autograder.nbgrader_plugins.GradeSubmission",  # replaces Execute: sandbox + hidden checks
    "autograder.nbgrader_plugins.SanitizeStudentContent",  # the notebook on disk holds nothing a browser runs
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Every page that renders a notebook (formgrader reads these settings through
# nbgrader_config.py; generate_feedback too) sanitises student content again.
# (Not nbconvert's sanitize_html: its allow-list has no <p>, <th>, <thead>, so a
# clean Markdown output or table would show its tags as text.)
c.HTMLExporter.preprocessors = ["autograder.nbgrader_plugins.SanitizeStudentContent"]
c.GenerateFeedback.exporter_class = "autograder.nbgrader_plugins.FeedbackExporter"  # adds a Content-Security-Policy
c.GenerateFeedback.preprocessors = [
    "autograder.nbgrader_plugins.HideGraderInternals",
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# --- late work (README "Late work") -------------------------------------------
# nbgrader's AssignLatePenalties (in the autograde list above) asks this plugin
# for the penalty of a submission whose timestamp.txt is after the due date.
# The kit writes LateWork.due_date into the gradebook at `spamkit release` and
# before each autograde; empty = the gradebook's due date as it is (none: nothing late).
#   c.LateWork.due_date = "2026-11-20 17:00:00 Europe/Berlin"
c.AssignLatePenalties.plugin_class = "autograder.nbgrader_plugins.LatePenalty"
c.LatePenalty.penalty_method = "per_day"  # or nbgrader's "none" / "zero"
#   c.LatePenalty.percent_per_day = 10.0     # (the default) of the notebook's score, per started day late
c.LatePenalty.grace_minutes = 15.0
c.LatePenalty.zero_after_days = 5.0  # 5 days late or more: the whole score

# --- the kit ------------------------------------------------------------------
# The lab, the grading thresholds, the sandbox limits, Dask, the exports and the
# LMS files all keep the kit's defaults here, e.g. (spamkit --help-all lists all):
#   c.Lab.dataset = "enron"                  # needs enron_spam/enron_spam.csv.gz in the data folder
#   c.Grading.hidden_auc_threshold = 0.96    # after `spamkit calibrate`; the default is calibrated
#   c.Sandbox.memory_mb = 8192
#   c.Batch.n_workers = 4                    # default: one per core
#   c.LmsExport.canvas_assignment = "Spam lab (12345)"   # see README "Grades to Canvas and Moodle"
# Rosters are the LMS's own files, relative to the course root (they hold
# student data: keep them out of git).
c.Lab.data_dir = os.environ.get("SPAM_LAB_DATA_DIR", "")  # local copy of the data ("": cache, else download)
