"""The student's side in a real browser: the released notebook in JupyterLab
fails on the stubs with the kit's message, then passes its public tests once
the exercises are solved."""

from __future__ import annotations

import re
import shutil

import pytest

pytest.importorskip("playwright")

import lab_ui  # noqa: E402
import nbformat  # noqa: E402
from kit_testing import ASSIGNMENT, source_answers  # noqa: E402
from lab_server import lab_server  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.browser

NOTEBOOK = f"{ASSIGNMENT}.ipynb"


def grade_ids(nb) -> dict[str, int]:
    """grade_id -> index of the cell in the notebook (= in JupyterLab)."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: i
        for i, cell in enumerate(nb.cells)
        if "grade_id" in cell.metadata.get("nbgrader", {})
    }


def solution_cells(nb) -> list[str]:
    return [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in nb.cells
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution")
    ]


def test_student_sees_stub_errors_then_passing_self_checks(course, page, tmp_path):
    workspace = tmp_path / "student"
    shutil.copytree(course / "release" / ASSIGNMENT, workspace)  # the notebook and spam_data.py
    released = nbformat.read(workspace / NOTEBOOK, as_version=4)
    index = grade_ids(released)
    exercises = solution_cells(released)
    assert exercises == ["compile", "fit", "plot_history"], exercises  # the lab's contract
    stub = re.search(r'raise NotImplementedError\("([^"]+)"\)', released.cells[index["compile"]].source)
    assert stub, released.cells[index["compile"]].source
    answers = source_answers(course)

    with lab_server(workspace, tmp_path / "lab") as server:
        lab_ui.open_notebook(page, server, NOTEBOOK)
        expect(lab_ui.cells(page)).to_have_count(len(released.cells))  # JupyterLab renders cells lazily

        # Run All on the released notebook: the given cells run, the first stub
        # stops the run with the kit's message, later cells are not run.
        lab_ui.menu(page, "Run", "Run All Cells")
        error = lab_ui.outputs(page, index["compile"]).filter(has_text="NotImplementedError")
        expect(error).to_contain_text(f"NotImplementedError: {stub.group(1)}", timeout=120_000)
        expect(lab_ui.outputs(page, index["load_data"])).to_contain_text("validation:")
        expect(lab_ui.outputs(page, index["test_compile"])).to_have_count(0)
        expect(page.locator("#jp-main-statusbar")).to_contain_text("Idle")
        expect(lab_ui.outputs(page, index["test_plot"])).to_have_count(0)
        lab_ui.scroll_to(page, index["compile"])
        lab_ui.save_screenshot(page, "student-stub-error")

        # The student writes the three exercises and reruns from a fresh kernel.
        for grade_id in exercises:
            lab_ui.set_source(page, index[grade_id], answers[grade_id])
        lab_ui.restart_and_run_all(page)
        last = lab_ui.outputs(page, index["test_plot"])
        expect(last).to_contain_text("Exercise 3:", timeout=240_000)

        expect(lab_ui.outputs(page, index["test_compile"])).to_have_text("Exercise 1: the model is compiled.")
        expect(lab_ui.outputs(page, index["test_fit"])).to_contain_text(
            re.compile(r"Exercise 2: 1 epoch\(s\), last val_loss \d")
        )
        expect(lab_ui.outputs(page, index["plot_history"]).locator("img")).to_have_count(3)  # accuracy, auc, loss
        all_outputs = page.locator(".jp-OutputArea-output")
        expect(all_outputs.filter(has_text=lab_ui.TRACEBACK)).to_have_count(0)
        expect(all_outputs.filter(has_text="NotImplementedError")).to_have_count(0)
        lab_ui.scroll_to(page, index["test_compile"])
        lab_ui.save_screenshot(page, "student-self-checks-pass")

        # What the browser saved is what the student typed.
        lab_ui.save_notebook(page)
    saved = nbformat.read(workspace / NOTEBOOK, as_version=4)
    for grade_id in exercises:
        assert saved.cells[index[grade_id]].source == answers[grade_id], grade_id
