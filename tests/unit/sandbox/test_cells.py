"""How a run ended, named by cell: the runner's facts (run.json, the progress file) become the run's message.

The runner reports cells by index; the grader names them from its own copy
of the notebook and its own settings. The runner's own texts (the error it
writes into a timed-out cell) must say the same as the grader's.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from autograder.model import Status, cell_label, cells_timed_out, while_running
from autograder.sandbox import cells
from autograder.sandbox.cells import cell_labels, describe
from autograder.sandbox.collect import PROGRESS, RunProgress, read_progress, read_report
from autograder.sandbox.payload import runner
from autograder.settings import Sandbox

LIMITS = Sandbox(cell_timeout=600, notebook_timeout=900)
LABELS = ["setup", "compile", "cell 3", "fit", "test_fit"]


def notebook():
    nb = new_notebook(
        cells=[
            new_code_cell("import time"),
            new_code_cell("model.compile()"),
            new_markdown_cell("x"),
            new_code_cell("history = model.fit()"),
            new_code_cell("assert history"),
        ]
    )
    for cell, grade_id in zip(nb.cells, ["setup", "compile", None, "fit", "test_fit"]):
        if grade_id:
            cell.metadata["nbgrader"] = {"grade_id": grade_id, "solution": grade_id in ("compile", "fit")}
    return nb


def test_cells_are_named_from_the_grader_s_copy_of_the_notebook(tmp_path):
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(), path)
    assert cell_labels(path) == LABELS


@pytest.mark.parametrize(
    "status, message, progress, expected",
    [
        (Status.OK, "", RunProgress(), (Status.OK, "")),
        (
            Status.CELL_TIMEOUT,
            "",
            RunProgress(None, [1]),
            (Status.CELL_TIMEOUT, "cell `compile` stopped after 600 s (Sandbox.cell_timeout)"),
        ),
        (
            Status.OK,
            "outputs cut after 2000000 bytes",
            RunProgress(None, [1, 3]),  # the facts decide: not ok
            (
                Status.CELL_TIMEOUT,
                "cells `compile`, `fit` stopped after 600 s each (Sandbox.cell_timeout); "
                "outputs cut after 2000000 bytes",
            ),
        ),
        (
            Status.KERNEL_DIED,
            "the Python kernel died",
            RunProgress(3, []),
            (Status.KERNEL_DIED, "the Python kernel died while cell `fit` was running"),
        ),
        (
            Status.TIMEOUT,
            "stopped after 900 s (Sandbox.notebook_timeout)",
            RunProgress(3, [1]),
            (
                Status.TIMEOUT,
                "stopped after 900 s (Sandbox.notebook_timeout) while cell `fit` was running; "
                "cell `compile` stopped after 600 s (Sandbox.cell_timeout)",
            ),
        ),
        (
            Status.TIMEOUT,
            "A cell timed out while it was being executed, after 4 seconds",
            RunProgress(1, [1]),
            (
                Status.TIMEOUT,
                "cell `compile` stopped after 600 s (Sandbox.cell_timeout), and the run ended: "
                "the kernel did not answer the interrupt",
            ),
        ),
        (
            Status.OUT_OF_MEMORY,
            "used more than 4096 MB of memory",
            RunProgress(-1, []),
            (Status.OUT_OF_MEMORY, "used more than 4096 MB of memory while cell `kit-evidence-guard` was running"),
        ),
        (
            Status.TOO_MUCH_DISK,
            "wrote more than 1024 MB",
            RunProgress(5, []),
            (Status.TOO_MUCH_DISK, "wrote more than 1024 MB while cell `kit-evidence-capture` was running"),
        ),
        (
            Status.KERNEL_DIED,
            "the Python kernel died",
            RunProgress(99, [42]),  # no such cells: nothing named
            (Status.KERNEL_DIED, "the Python kernel died"),
        ),
    ],
)
def test_the_run_s_message_names_the_cells(status, message, progress, expected):
    assert describe(status, message, progress, LABELS, LIMITS) == expected


def test_the_runner_s_cells_are_data(tmp_path):
    assert RunProgress.of({"cell": 3, "timed_out": [1, 1, 2]}) == RunProgress(3, [1, 2])
    for planted in (
        {"cell": True, "timed_out": "1"},
        {"cell": "1", "timed_out": [1.0, None, [1], -2, 10**9]},
        {"cell": None, "timed_out": {"1": 1}},
        [3],
        "cell 3",
        None,
    ):
        assert RunProgress.of(planted) == RunProgress(), planted
    assert len(RunProgress.of({"timed_out": list(range(10_000))}).timed_out) == 50
    (tmp_path / "run.json").write_text('{"status": "cell_timeout", "message": "", "cell": null, "timed_out": [1]}')
    assert read_report(tmp_path) == (Status.CELL_TIMEOUT, "", [], RunProgress(None, [1]))
    assert read_progress(tmp_path) == RunProgress()  # none written
    for broken, found in (
        ('{"cell": 3, "timed_out": [1]}', RunProgress(3, [1])),
        ('{"cell": 3', RunProgress()),
        ("[" * 5000, RunProgress()),
        (b"\xff\xfe", RunProgress()),
    ):
        (tmp_path / PROGRESS).write_bytes(broken if isinstance(broken, bytes) else broken.encode())
        assert read_progress(tmp_path) == found


def test_the_runner_says_what_the_grader_says():
    nb = notebook()
    assert [runner.cell_name(c, i) for i, c in enumerate(nb.cells)] == [
        cell_label(c, i) for i, c in enumerate(nb.cells)
    ]
    assert runner.timeout_text("compile", 600) == cells_timed_out(["compile"], 600)
    assert runner.kernel_died_text("fit") == f"the Python kernel died {while_running('fit')}"
    assert runner.IGNORED_INTERRUPT == cells.IGNORED_INTERRUPT
    assert (runner.GUARD_TAG, runner.CAPTURE_TAG) == (cells.GUARD_CELL, cells.CAPTURE_CELL)
    guard = new_code_cell("pass")
    guard.metadata["tags"] = [runner.GUARD_TAG]
    assert runner.cell_name(guard, -1) == cells.GUARD_CELL


def interrupted_cell():
    """A cell as nbgrader's Execute leaves it after the cell timeout: what it printed, the interrupt, nbclient's error."""
    cell = new_code_cell("import time\ntime.sleep(10**6)")
    cell.outputs = [
        new_output("stream", name="stdout", text="training...\n"),
        new_output(
            "error",
            ename="KeyboardInterrupt",
            evalue="",
            traceback=[
                "\x1b[31m-----\x1b[39m",
                "\x1b[31mKeyboardInterrupt\x1b[39m    Traceback (most recent call last)",
                "Cell In[2], line 2\n----> 2 time.sleep(10**6)\n",
                "\x1b[31mKeyboardInterrupt\x1b[39m: ",
            ],
        ),
        new_output(
            "error",
            ename="CellTimeoutError",
            evalue="",
            traceback=["\x1b[0;31mCellTimeoutError\x1b[0m: No reply from kernel before timeout"],
        ),
    ]
    return cell


def test_a_timed_out_cell_shows_one_clear_error_where_it_was_interrupted():
    cell = interrupted_cell()
    runner._replace_errors(cell, "CellTimeout", runner.timeout_text("fit", 600))
    assert [o.output_type for o in cell.outputs] == ["stream", "error"]
    error = cell.outputs[1]
    assert (error.ename, error.evalue) == ("CellTimeout", "cell `fit` stopped after 600 s (Sandbox.cell_timeout)")
    assert error.traceback[1].startswith("\x1b[31mCellTimeout\x1b[39m    Traceback")
    assert error.traceback[2] == "Cell In[2], line 2\n----> 2 time.sleep(10**6)\n"  # where it was stopped
    assert error.traceback[-1] == "\x1b[31mCellTimeout\x1b[39m: cell `fit` stopped after 600 s (Sandbox.cell_timeout)"
    assert "KeyboardInterrupt" not in json.dumps(cell.outputs) and "CellTimeoutError" not in json.dumps(cell.outputs)
    swallowed = interrupted_cell()  # a cell that caught the interrupt: only nbclient's error is left
    swallowed.outputs = swallowed.outputs[:1] + swallowed.outputs[2:]
    runner._replace_errors(swallowed, "KernelDied", runner.kernel_died_text("fit"))
    assert [(o.output_type, o.get("ename")) for o in swallowed.outputs] == [("stream", None), ("error", "KernelDied")]
    assert swallowed.outputs[1].traceback == [
        "\x1b[31mKernelDied\x1b[39m: the Python kernel died while cell `fit` was running"
    ]
