"""nbgrader preprocessors of the kit, plugged in through course_config.py.

``GradeSubmission`` takes the place of nbgrader's ``Execute`` in
``Autograde.autograde_preprocessors``: it runs the sanitized notebook in the
sandbox, runs the hidden checks on the evidence and writes each test cell's
per-check report and partial score into that cell's outputs, where
nbgrader's ``SaveAutoGrades`` finds them. ``HideGraderInternals`` runs first
in ``GenerateFeedback.preprocessors``.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_output
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Int

from .course.store import ResultStore, summarize
from .grading.engine import grade_notebook, make_job, submission_digest, submission_key

_JOBS: dict = {}
MAX_STUDENT_FILES_BYTES = 20_000_000
MAX_TRACEBACK_FRAMES = 12
MAX_FRAME_CHARS = 4000
REPORT_WIDTH = 88  # formgrader shows reports in a <pre> that does not wrap
STATUS_TEXT = {
    "timeout": "Your notebook did not finish in time",
    "out_of_memory": "Your notebook used too much memory",
    "too_much_output": "Your notebook printed too much output",
    "too_many_processes": "Your notebook started too many processes",
    "too_much_disk": "Your notebook wrote too much to disk",
    "kernel_died": "Your notebook's Python kernel died",
    "no_output": "Your notebook could not be run",
    "error": "Your notebook could not be run",
}


def course_root(config) -> Path:
    return Path(CourseDirectory(config=config).root).resolve()


def grading_job(config):
    root = course_root(config)
    if root not in _JOBS:
        _JOBS[root] = make_job(config, root)
    return _JOBS[root]


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


def _trimmed_error(output):
    """An error output kept whatever its size: the student must see what broke."""
    output = nbformat.from_dict(json.loads(json.dumps(output)))
    frames = output.get("traceback", [])
    output["traceback"] = ([f"... {len(frames) - MAX_TRACEBACK_FRAMES} frames left out ..."] if len(frames) > MAX_TRACEBACK_FRAMES else []) + [
        frame[:MAX_FRAME_CHARS] for frame in frames[-MAX_TRACEBACK_FRAMES:]
    ]
    output["evalue"] = str(output.get("evalue", ""))[:MAX_FRAME_CHARS]
    return output


def merge_outputs(nb, executed_json: str | None, max_bytes: int) -> None:
    """Copy outputs of cells whose source the run did not change; cap their size.

    Errors always stay (trimmed); other outputs past max_bytes are replaced by a note.
    """
    if not executed_json:
        return
    executed = nbformat.reads(executed_json, as_version=4)
    if len(executed.cells) != len(nb.cells):
        return
    for cell, ran in zip(nb.cells, executed.cells):
        if cell.cell_type != "code" or ran.cell_type != "code" or ran.source != cell.source:
            continue
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


def report_text(cell_checks: list[dict], points: float, result: dict) -> str:
    score = sum(c["score"] for c in cell_checks)
    lines = [f"Grader checks: {score:g} / {points:g} points"]
    if result["status"] != "ok":
        status = f"{STATUS_TEXT.get(result['status'], result['status'])}: {result['message'][:300]}"
        lines.extend(textwrap.wrap(status, REPORT_WIDTH, initial_indent="  ! ", subsequent_indent="    "))
    if not result["sandboxed"]:
        lines.append("  ! graded without the sandbox (course opted out)")
    for check in cell_checks:
        mark = "PASS" if check["passed"] else "FAIL"
        lines.append(f"  [{mark}] {check['score']:g}/{check['points']:g}  {check['name']}")
        if not check["passed"] and check["message"]:
            lines.extend(textwrap.wrap(check["message"], REPORT_WIDTH, initial_indent=" " * 9,
                                       subsequent_indent=" " * 9, break_on_hyphens=False))
    return "\n".join(lines) + "\n"


def write_reports(nb, result: dict) -> None:
    """Replace each graded test cell's outputs by its checks' report and score."""
    by_cell: dict = {}
    for check in result["checks"]:
        by_cell.setdefault(check["cell"], []).append(check)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        checks = by_cell.get(meta.get("grade_id"))
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution") or checks is None:
            continue
        points = float(meta["points"])
        score = min(points, sum(c["score"] for c in checks))
        cell.outputs = [
            new_output("stream", name="stdout", text=report_text(checks, points, result)),
            # nbgrader scores the plain text; formgrader and feedback show the HTML
            new_output("execute_result", execution_count=cell.get("execution_count"), data={
                "text/plain": f"{score:g}",
                "text/html": f"<b>{score:g} / {points:g}</b> points from the grader's checks",
            }),
        ]


class GradeSubmission(NbGraderPreprocessor):
    """Sandboxed execution plus hidden checks, in place of nbgrader's Execute."""

    max_cell_output_bytes = Int(200_000, help="bytes of outputs kept per cell").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        root = course_root(self.config)
        job = grading_job(self.config)
        folder = Path(resources["metadata"]["path"])
        files = student_files(folder, info["notebook"])
        key = submission_key(nb, files, job)
        store = ResultStore(root)
        result = store.get(key)
        if result is None:
            self.log.info("Grading %s in the sandbox", info["student"])
            result = grade_notebook(nbformat.writes(nb), files, job, info["notebook"])
            store.put(key, result)
            result.pop("evidence")
        else:
            self.log.info("Using the stored result of %s (%s)", info["student"], key[:12])
        merge_outputs(nb, result.get("executed"), self.max_cell_output_bytes)
        write_reports(nb, result)
        store.write_summary(info["assignment"], info["student"], summarize(result, key, submission_digest(nb, files)))
        resources.setdefault("kit", {})["result"] = result
        return nb, resources


_HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


class HideGraderInternals(NbGraderPreprocessor):
    """Feedback shows what each check said, never hidden test code or grader metadata."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            cell.source = _HIDDEN.sub("", cell.source)
        cell.metadata.pop("kit", None)
        cell.metadata.pop("tags", None)
        return cell, resources
