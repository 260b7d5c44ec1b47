"""What GradeSubmission writes into the graded notebook: the run's outputs, each test cell's report and score."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.utils import determine_grade

from autograder.course.autograde import MAX_FRAME_CHARS, MAX_TRACEBACK_FRAMES, merge_outputs, report_text, write_reports
from autograder.model import CheckResult, GradingResult, Status


def graded_notebook():
    """A sanitized submission: a solution cell, two test cells, a markdown cell."""
    nb = new_notebook(
        cells=[
            new_code_cell("x = 1\nprint(x)"),
            new_code_cell("assert x == 1"),
            new_code_cell("assert True"),
            new_markdown_cell("An answer."),
        ]
    )
    nb.cells[0].metadata["nbgrader"] = {"grade_id": "compile", "solution": True, "grade": False}
    for cell, grade_id, points in ((nb.cells[1], "test_compile", 5), (nb.cells[2], "test_fit", 9)):
        cell.metadata["nbgrader"] = {
            "grade_id": grade_id,
            "grade": True,
            "solution": False,
            "points": points,
            "locked": True,
        }
    return nb


def checks() -> list[CheckResult]:
    return [
        CheckResult("test_optimizer_is_adam", "test_compile", "Optimizer is Adam", 1.0, True, 1.0),
        CheckResult(
            "test_loss",
            "test_compile",
            "Loss is binary cross-entropy",
            4.0,
            False,
            0.0,
            "the loss is 'mse'; a single sigmoid output for two classes needs loss=\"binary_crossentropy\""
            " (or keras.losses.BinaryCrossentropy()), which is what the lab asks for in exercise one",
        ),
        CheckResult("test_hidden_auc", "test_fit", "Trained model passes on hidden test data", 9.0, True, 9.0),
    ]


def result(status=Status.OK, message="", sandboxed=True, executed=None) -> GradingResult:
    return GradingResult(status, message, sandboxed, 9.0, 8.0, 1.0, 700.0, executed, checks())


def test_report_text_lists_every_check_with_its_message_wrapped():
    text = report_text(checks()[:2], 5.0, result())
    lines = text.splitlines()
    assert lines[0] == "Grader checks: 1 / 5 points"
    assert lines[1] == "  [PASS] 1/1  Optimizer is Adam" and lines[2] == "  [FAIL] 0/4  Loss is binary cross-entropy"
    assert all(len(line) <= 88 for line in lines) and len(lines) > 4  # formgrader's <pre> does not wrap
    assert " ".join(" ".join(lines[3:]).split()) == " ".join(checks()[1].message.split())
    assert "!" not in text  # a run that ended well, in the sandbox: nothing to warn about


def test_report_text_says_how_the_run_ended_and_when_unsandboxed():
    text = report_text(
        checks()[2:], 9.0, result(Status.OUT_OF_MEMORY, "used more than 4096 MB of memory", sandboxed=False)
    )
    assert "  ! Your notebook used too much memory: used more than 4096 MB of memory" in text
    assert "  ! graded without the sandbox (course opted out)" in text


def test_write_reports_scores_each_test_cell_the_nbgrader_way():
    nb = graded_notebook()
    write_reports(nb, result())
    compile_cell, fit_cell = nb.cells[1], nb.cells[2]
    assert compile_cell.outputs[0]["text"].startswith("Grader checks: 1 / 5 points")
    assert compile_cell.outputs[1]["data"]["text/plain"] == "1"
    assert fit_cell.outputs[1]["data"]["text/html"] == "<b>9 / 9</b> points from the grader's checks"
    # nbgrader's own scoring reads the partial score from the last expression's value
    assert determine_grade(compile_cell)[0] == 1.0 and determine_grade(fit_cell)[0] == 9.0
    assert nb.cells[0].get("outputs") == [] and "outputs" not in nb.cells[3]  # other cells untouched


def executed(nb, **outputs_by_index):
    ran = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    for index, outputs in outputs_by_index.items():
        ran.cells[int(index[1:])].outputs = outputs
        ran.cells[int(index[1:])].execution_count = int(index[1:]) + 1
    return nbformat.writes(ran)


def test_merge_outputs_copies_what_ran_and_caps_it():
    nb = graded_notebook()
    stream = new_output("stream", name="stdout", text="1\n")
    big = [new_output("stream", name="stdout", text="x" * 400) for _ in range(3)]
    merge_outputs(nb, executed(nb, c0=[stream], c2=big), max_bytes=1000)
    assert nb.cells[0].outputs == [stream] and nb.cells[0].execution_count == 1
    assert len(nb.cells[2].outputs) == 3 and nb.cells[2].outputs[-1]["text"] == "\n[output cut: too long]\n"


def test_merge_outputs_keeps_errors_trimmed_and_skips_changed_cells():
    nb = graded_notebook()
    frames = [f"frame {i} " + "y" * 5000 for i in range(30)]
    error = new_output("error", ename="ValueError", evalue="v" * 9000, traceback=frames)
    ran = executed(nb, c0=[error], c1=[new_output("stream", name="stdout", text="ran\n")])
    changed = nbformat.reads(ran, as_version=4)
    changed.cells[1].source = "assert x == 2  # not what the submission holds"
    merge_outputs(nb, nbformat.writes(changed), max_bytes=10)
    kept = nb.cells[0].outputs[0]
    assert kept["ename"] == "ValueError" and len(kept["evalue"]) == MAX_FRAME_CHARS
    assert kept["traceback"][0] == f"... {30 - MAX_TRACEBACK_FRAMES} frames left out ..."
    assert len(kept["traceback"]) == MAX_TRACEBACK_FRAMES + 1 and kept["traceback"][-1].startswith("frame 29")
    assert nb.cells[1].get("outputs") == []  # its source differs from what ran: nothing copied
    before = nbformat.writes(nb)
    merge_outputs(nb, None, 10)  # no executed notebook (the run left none): nothing to copy
    shorter = nbformat.reads(ran, as_version=4)
    shorter.cells.pop(2)
    merge_outputs(nb, nbformat.writes(shorter), 10)  # a different number of code cells: nothing copied
    assert nbformat.writes(nb) == before


@pytest.mark.parametrize(
    "status, message, said",
    [
        (
            Status.CELL_TIMEOUT,
            "cell `compile` stopped after 600 s (Sandbox.cell_timeout)",
            "! A cell of your notebook was stopped at its time limit: cell `compile` stopped after 600 s "
            "(Sandbox.cell_timeout)",
        ),
        (
            Status.KERNEL_DIED,
            "the Python kernel died while cell `fit` was running",
            "! Your notebook's Python kernel died: the Python kernel died while cell `fit` was running",
        ),
        (
            Status.TIMEOUT,
            "stopped after 900 s (Sandbox.notebook_timeout) while cell `fit` was running",
            "! Your notebook did not finish in time: stopped after 900 s (Sandbox.notebook_timeout) while cell `fit` "
            "was running",
        ),
    ],
)
def test_the_student_reads_which_cell_stopped_and_why_under_every_test_cell(status, message, said):
    nb = graded_notebook()
    write_reports(nb, result(status, message))
    for cell in nb.cells[1:3]:
        text = cell.outputs[0]["text"]
        assert said in " ".join(text.split()) and all(len(line) <= 88 for line in text.splitlines())
    assert determine_grade(nb.cells[2])[0] == 9.0  # the checks still give the grade


def test_merge_outputs_matches_an_identical_code_run_by_its_code():
    """A classmate's run of identical code: outputs land in this notebook's code cells, its Markdown stays."""
    nb = graded_notebook()
    nb.cells[0].source = "# my own comment\nx = 1\n\nprint(x)  # prints one"
    nb.cells[3].source = "My own answer."
    classmate = graded_notebook()
    classmate.cells.insert(3, new_markdown_cell("A note of theirs."))
    stream = new_output("stream", name="stdout", text="1\n")
    merge_outputs(nb, executed(classmate, c0=[stream]), max_bytes=1000)
    assert nb.cells[0].outputs == [stream] and nb.cells[0].execution_count == 1
    assert nb.cells[0].source.startswith("# my own comment") and nb.cells[3].source == "My own answer."
    other_code = graded_notebook()
    other_code.cells[0].source = "x = 2\nprint(x)"
    mine = graded_notebook()
    merge_outputs(mine, executed(other_code, c0=[stream]), max_bytes=1000)
    assert mine.cells[0].get("outputs") == []  # not the same code: nothing copied
