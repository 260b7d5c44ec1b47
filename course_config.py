"""The course in one file: nbgrader's settings and the kit's.

nbgrader reads it through nbgrader_config.py (nbgrader has no --config flag),
and the kit reads it with autograder.settings.load_course_config().
Every value here can be overridden on the command line, e.g.
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
    "python": "# YOUR CODE HERE\nraise NotImplementedError(\"Replace this line with your code.\")"
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# model.fit takes seconds per epoch; give a training cell room, the sandbox
# limits (below) bound the whole notebook.
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

# --- the lab ----------------------------------------------------------------
c.Lab.assignment = "spam_transformer"
c.Lab.dataset = "sms"              # "sms" (UCI SMS Spam Collection) or "enron"
c.Lab.data_dir = os.environ.get("SPAM_LAB_DATA_DIR", "")   # local copy of the data
c.Lab.split_seed = 1234            # fixes train / validation / hidden test
c.Lab.seed = 42                    # the grader's training seed

# --- grading ----------------------------------------------------------------
# From `spamkit calibrate` (20 seeded runs of the reference solution, 2026-11-27):
# grader's val AUC min 0.9327 / median 0.9803, hidden AUC min 0.9720 / median 0.9892,
# reported-vs-regraded gap 0 on every run. Thresholds = min - 0.02.
c.Grading.val_auc_threshold = 0.91
c.Grading.hidden_auc_threshold = 0.95
c.Grading.honesty_tolerance = 0.005    # |reported val_auc - grader's own| allowed
c.Grading.partial_credit_on_crash = True  # a run stopped by a limit or a dead kernel is graded on what it recorded before

# --- sandbox and limits per submission -------------------------------------
c.Sandbox.mode = "bwrap"               # "bwrap", or "none" to opt out (marked unsandboxed)
c.Sandbox.notebook_timeout = 900       # seconds for the whole notebook
c.Sandbox.cell_timeout = 600           # seconds per cell
c.Sandbox.memory_mb = 4096
c.Sandbox.max_processes = 256
c.Sandbox.max_output_bytes = 2_000_000
c.Sandbox.disk_mb = 1024
c.Sandbox.cpu_threads = 0              # 0 = the cores shared among the sandboxes that run at once
c.Sandbox.cgroups = "auto"             # kernel-enforced memory/process/CPU limits where the host allows; "off": polling

# --- batch grading ----------------------------------------------------------
c.Batch.scheduler_address = ""         # "" = a local Dask cluster
c.Batch.n_workers = 0                  # 0 = one per core
c.Batch.threads_per_worker = 1
c.Batch.check_workers = 0              # 0 = one worker for the hidden checks per four sandbox workers

# --- grades back to the LMS (spamkit export; see README "Grades to Canvas and Moodle") ---
# Rosters are the LMS's own files, relative to the course root (they hold student data: keep them out of git).
c.LmsExport.canvas_roster = ""         # Canvas Grades → Export, e.g. "lms/canvas_gradebook.csv" (optional)
c.LmsExport.canvas_assignment = ""     # the Canvas column "Title (assignment id)", e.g. "Spam lab (12345)"
c.LmsExport.moodle_roster = ""         # Moodle grading worksheet, e.g. "lms/moodle_worksheet.csv"
c.LmsExport.moodle_match = "email"     # Moodle import identifies users by "email" or "idnumber"
