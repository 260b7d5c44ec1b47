"""nbgrader's autograde with the kit's grading: ``GradeSubmission`` in place of ``Execute``.

``GradeSubmission`` (in ``Autograde.autograde_preprocessors``, loaded by
nbgrader as ``autograder.nbgrader_plugins.GradeSubmission``) runs the
sanitized notebook in the sandbox, runs the hidden checks on the evidence and
writes each test cell's per-check report and partial score into that cell's
outputs, where nbgrader's ``SaveAutoGrades`` finds them. A result already in
the course's ``ResultStore`` under the submission's key is used instead of
running again (the batch graded it on Dask, or a classmate's identical code).

``AutogradeWithJob`` is nbgrader's ``Autograde`` as the kit runs it in its
own process: it hands the course's GradingJob to ``GradeSubmission`` in the
notebook's resources. Under plain ``nbgrader autograde`` there is none, and
``GradeSubmission`` builds the job from the course's config. A batch that
prepared the notebook hands its ``Submission`` too (``resources["kit"]``),
so the notebook is keyed once.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.converters import Autograde
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Instance, Int

from ..grading.engine import grade_notebook
from ..grading.identical import matching_code_cells
from ..grading.job import GradingJob, make_job
from ..grading.submission import prepare_submission
from ..model import PARTIAL_NOTE, UNENFORCED_NOTE, CheckResult, GradingResult, Status, Summary, limits_unenforced
from .store import ResultStore

KIT = "kit"  # the key of the kit's entry in a notebook's nbconvert resources


class KitResources(dict):
    """The kit's entry in a notebook's resources: handed down the pipeline as it is, never copied.

    nbconvert deep-copies the resources before every preprocessor; what the kit hands down (the GradingJob,
    the prepared submission, the batch's open gradebook session) is shared, read-only or not copyable.
    """

    def __deepcopy__(self, memo):
        return self


MAX_TRACEBACK_FRAMES = 12
MAX_FRAME_CHARS = 4000
REPORT_WIDTH = 88  # formgrader shows reports in a <pre> that does not wrap


def course_root(config) -> Path:
    return Path(CourseDirectory(config=config).root).resolve()


def _trimmed_error(output):
    """An error output kept whatever its size: the student must see what broke."""
    output = nbformat.from_dict(json.loads(json.dumps(output)))
    frames = output.get("traceback", [])
    output["traceback"] = (
        [f"... {len(frames) - MAX_TRACEBACK_FRAMES} frames left out ..."] if len(frames) > MAX_TRACEBACK_FRAMES else []
    ) + [frame[:MAX_FRAME_CHARS] for frame in frames[-MAX_TRACEBACK_FRAMES:]]
    output["evalue"] = str(output.get("evalue", ""))[:MAX_FRAME_CHARS]
    return output


def merge_outputs(nb, executed_json: str | None, max_bytes: int) -> None:
    """Copy the run's outputs into the notebook's code cells, matched in order by their code; cap their size.

    The run may be a classmate's identical code (``grading.identical``): its code cells are paired with
    this notebook's in order and a cell takes the outputs of the cell whose code is the same (comments and
    blank lines aside); the notebook keeps its own cells, Markdown and all. Errors always stay (trimmed);
    other outputs past max_bytes are replaced by a note.
    """
    if not executed_json:
        return
    executed = nbformat.reads(executed_json, as_version=4)
    for cell, ran in matching_code_cells(nb.cells, executed.cells):
        outputs, size, cut = [], 0, False
        for output in ran.get("outputs", []):
            if output.get("output_type") == "error":
                outputs.append(_trimmed_error(output))
                continue
            size += len(json.dumps(output))
            if size > max_bytes:
                cut = True
                continue
            outputs.append(output)
        if cut:
            outputs.append(new_output("stream", name="stdout", text="\n[output cut: too long]\n"))
        cell.outputs = outputs
        cell.execution_count = ran.get("execution_count")


def report_text(cell_checks: list[CheckResult], points: float, result: GradingResult) -> str:
    """A test cell's report: its score, how the run ended if not well, and each check's line."""
    score = sum(c.score for c in cell_checks)
    lines = [f"Grader checks: {score:g} / {points:g} points"]
    if result.status != Status.OK:
        status = f"{result.status.student}: {result.message[:300]}"
        if result.partial:
            status += f" ({PARTIAL_NOTE})"
        lines.extend(textwrap.wrap(status, REPORT_WIDTH, initial_indent="  ! ", subsequent_indent="    "))
    if not result.sandboxed:
        lines.append("  ! graded without the sandbox (course opted out)")
    elif limits_unenforced(result.sandboxed, result.limits_by):
        lines.append(f"  ! {UNENFORCED_NOTE}")
    for check in cell_checks:
        mark = "PASS" if check.passed else "FAIL"
        lines.append(f"  [{mark}] {check.score:g}/{check.points:g}  {check.name}")
        if not check.passed and check.message:
            lines.extend(
                textwrap.wrap(
                    check.message,
                    REPORT_WIDTH,
                    initial_indent=" " * 9,
                    subsequent_indent=" " * 9,
                    break_on_hyphens=False,
                )
            )
    return "\n".join(lines) + "\n"


def write_reports(nb, result: GradingResult) -> None:
    """Replace each graded test cell's outputs by its checks' report and score."""
    by_cell: dict = {}
    for check in result.checks:
        by_cell.setdefault(check.cell, []).append(check)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        checks = by_cell.get(meta.get("grade_id"))
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution") or checks is None:
            continue
        points = float(meta["points"])
        score = min(points, sum(c.score for c in checks))
        cell.outputs = [
            new_output("stream", name="stdout", text=report_text(checks, points, result)),
            # nbgrader scores the plain text; formgrader and feedback show the HTML
            new_output(
                "execute_result",
                execution_count=cell.get("execution_count"),
                data={
                    "text/plain": f"{score:g}",
                    "text/html": f"<b>{score:g} / {points:g}</b> points from the grader's checks",
                },
            ),
        ]


class GradeSubmission(NbGraderPreprocessor):
    """Sandboxed execution plus hidden checks, in place of nbgrader's Execute."""

    max_cell_output_bytes = Int(200_000, help="bytes of outputs kept per cell").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        root = course_root(self.config)
        kit = resources.get(KIT, {})
        job = kit.get("job") or make_job(self.config, root)
        # a batch that prepared this very notebook (course/gradebook.py) hands its submission: keyed once
        submission = kit.get("submission") or prepare_submission(
            nb, Path(resources["metadata"]["path"]), info["notebook"], job
        )
        store = ResultStore(root)
        key, result = store.find(submission)
        if result is None:
            self.log.info("Grading %s in the sandbox", info["student"])
            result = grade_notebook(submission.nb_json, submission.files, job, info["notebook"])
            result.code, result.graded_for = submission.code, info["student"]
            store.put(key, result)
            result.evidence = None  # kept beside the stored result; the notebook needs none of it
        elif result.graded_for and result.graded_for != info["student"]:
            self.log.info(
                "Using the result of %s's identical code for %s (%s)", result.graded_for, info["student"], key[:12]
            )
        else:
            self.log.info("Using the stored result of %s (%s)", info["student"], key[:12])
        merge_outputs(nb, result.executed, self.max_cell_output_bytes)
        write_reports(nb, result)
        store.write_summary(
            info["assignment"],
            info["student"],
            Summary.of_result(result, key, submission.digest, code_group=submission.key[:16], student=info["student"]),
        )
        resources.setdefault(KIT, {})["result"] = result
        return nb, resources


class AutogradeWithJob(Autograde):
    """nbgrader's autograde converter for a batch that built the GradingJob already.

    The job goes into each notebook's resources (``resources["kit"]["job"]``),
    nbconvert's way of handing data down a pipeline, where ``GradeSubmission``
    takes it instead of building the job again.
    """

    job = Instance(GradingJob, allow_none=True, help="the job GradeSubmission grades with")

    def init_single_notebook_resources(self, notebook_filename: str) -> dict:
        resources = super().init_single_notebook_resources(notebook_filename)
        if self.job is not None:
            resources[KIT] = KitResources(job=self.job)
        return resources
