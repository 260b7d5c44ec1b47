"""The student release: reproducible, free of solutions and grader material, and runnable.

The notebooks are executed in copies under tmp_path (never in the repo), one at
a time, with the shared data directory.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from kit_testing import ASSIGNMENT, REPO, data_env, make_course, nbgrader, release_notebook
from nbclient import NotebookClient
from nbgrader.preprocessors import IgnorePattern
from nbgrader.utils import determine_grade

from autograder.settings import load_course_config

COMMITTED_RELEASE = REPO / "release" / ASSIGNMENT
SOURCE = REPO / "source" / ASSIGNMENT
NOTEBOOK = f"{ASSIGNMENT}.ipynb"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def text_lines(name: str, data: bytes) -> set[str]:
    """A file's stripped lines; for a notebook, the lines of its cells' sources."""
    if name.endswith(".ipynb"):
        text = "\n".join(cell.source for cell in nbformat.reads(data.decode("utf-8"), as_version=4).cells)
    else:
        text = data.decode("utf-8")
    return {line.strip() for line in text.splitlines()}


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def solution_lines(cell) -> list[str]:
    """The lines nbgrader must strip: inside the markers, or the whole cell without them."""
    lines = cell.source.splitlines()
    begins = [i for i, line in enumerate(lines) if "### BEGIN SOLUTION" in line]
    if not begins:
        return lines
    ends = [i for i, line in enumerate(lines) if "### END SOLUTION" in line]
    return [line for b, e in zip(begins, ends) for line in lines[b + 1 : e]]


def execute(folder: Path, monkeypatch) -> nbformat.NotebookNode:
    """Run the notebook in `folder` top to bottom, keeping going after errors."""
    for name, value in data_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("SPAM_LAB_SPLITS", "SPAM_LAB_SEED", "SPAM_LAB_SPLIT_SEED", "SPAM_LAB_DATASET"):
        monkeypatch.delenv(name, raising=False)
    nb = nbformat.read(folder / NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", allow_errors=True, resources={"metadata": {"path": str(folder)}}
    ).execute()
    return nb


def errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


def score(cell) -> float:
    """nbgrader's score of an executed test cell, after the course's IgnorePattern."""
    cell = nbformat.from_dict(cell)
    cell, _ = IgnorePattern(config=load_course_config(REPO)).preprocess_cell(cell, {}, 0)
    return determine_grade(cell)[0]


@pytest.fixture(scope="module")
def executed_release(tmp_path_factory, course):
    folder = tmp_path_factory.mktemp("release_run") / ASSIGNMENT
    shutil.copytree(course / "release" / ASSIGNMENT, folder)
    with pytest.MonkeyPatch.context() as monkeypatch:
        return execute(folder, monkeypatch)


@pytest.fixture(scope="module")
def executed_source(tmp_path_factory):
    folder = tmp_path_factory.mktemp("source_run") / ASSIGNMENT
    shutil.copytree(SOURCE, folder, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        return execute(folder, monkeypatch)


# --- reproducible ----------------------------------------------------------------------


def test_release_regenerates_byte_for_byte(course, tmp_path):
    committed = files_of(COMMITTED_RELEASE)
    assert set(committed) == {NOTEBOOK, "spam_data.py"}
    assert files_of(course / "release" / ASSIGNMENT) == committed, (
        "the committed release is stale: run `nbgrader generate_assignment spam_transformer --force` in the repo"
    )
    root = make_course(tmp_path / "course")
    assert files_of(root / "release" / ASSIGNMENT) == committed
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")  # again, over the first one
    assert files_of(root / "release" / ASSIGNMENT) == committed


# --- no solutions, nothing of the grader ------------------------------------------------------


def test_release_holds_no_solution(course):
    source = nbformat.read(SOURCE / NOTEBOOK, as_version=4)
    release = files_of(course / "release" / ASSIGNMENT)
    texts = {name: data.decode("utf-8") for name, data in release.items()}
    released_lines = set().union(*(text_lines(name, data) for name, data in release.items()))
    released_cells = {nbgrader_meta(c).get("grade_id"): c for c in release_notebook(course).cells}

    solutions = [c for c in source.cells if nbgrader_meta(c).get("solution")]
    assert {nbgrader_meta(c)["grade_id"] for c in solutions} >= {"compile", "fit", "plot_history", "analysis"}
    for cell in solutions:
        grade_id = nbgrader_meta(cell)["grade_id"]
        lines = [line.strip() for line in solution_lines(cell) if re.search(r"\w", line)]
        assert lines, f"{grade_id}: no solution found in the source"
        leaked = [line for line in lines if line in released_lines]
        assert not leaked, f"solution lines of {grade_id} are in the release: {leaked}"
        assert released_cells[grade_id].source != cell.source
    for name, text in texts.items():
        for marker in MARKERS:
            assert marker not in text, f"{name} contains {marker}"

    for cell in release_notebook(course).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "the release carries outputs"


def test_release_holds_nothing_of_the_grader(course):
    release = files_of(course / "release" / ASSIGNMENT)
    grader_files = {p: p.read_bytes() for p in (REPO / "autograder").rglob("*.py")}
    assert not {p.name for p in grader_files} & {Path(name).name for name in release}
    assert not set(grader_files.values()) & set(release.values())
    released_lines = set().union(*(text_lines(name, data) for name, data in release.items()))
    for path, data in grader_files.items():
        if "checks" not in path.parts:
            continue
        distinctive = [
            line.strip()
            for line in data.decode("utf-8").splitlines()
            if len(line.strip()) >= 25 and not line.strip().startswith(("import ", "from ", "#"))
        ]
        assert distinctive and not set(distinctive) & released_lines, f"lines of {path.name} are in the release"
    for name, data in release.items():
        assert b"autograder" not in data, f"{name} refers to the grader"


# --- the released notebook runs up to the exercises ---------------------------------------


def test_released_notebook_fails_only_in_the_exercises(executed_release):
    cells = executed_release.cells
    ids = [nbgrader_meta(c).get("grade_id") for c in cells]
    first_exercise = min(i for i, c in enumerate(cells) if nbgrader_meta(c).get("solution") and c.cell_type == "code")
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        meta = nbgrader_meta(cell)
        if meta.get("locked") and not meta.get("grade"):
            assert not errors(cell), f"given cell {ids[index]} fails: {errors(cell)}"
        elif not meta.get("solution"):
            assert meta.get("grade") and index > first_exercise, f"unexpected cell {ids[index]}"

    by_id = dict(zip(ids, cells))
    for grade_id in ("compile", "fit"):
        assert [e.ename for e in errors(by_id[grade_id])] == ["NotImplementedError"], grade_id
    plot_errors = [(e.ename, e.evalue) for e in errors(by_id["plot_history"])]
    # `history` does not exist because fit is a stub, so the calls fail before the stub runs.
    assert plot_errors in (
        [("NotImplementedError", "Replace this line with your code.")],
        [("NameError", "name 'history' is not defined")],
    ), plot_errors

    tests = [c for c in cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    assert {nbgrader_meta(c)["grade_id"] for c in tests} == {"test_compile", "test_fit", "test_plot"}
    for cell in tests:
        assert errors(cell), f"{nbgrader_meta(cell)['grade_id']} passes on the unanswered stub"
        assert score(cell) == 0


# --- the source notebook (reference solution) passes ---------------------------------------


def test_source_notebook_runs_and_passes_every_test(executed_source):
    cells = executed_source.cells
    for cell in cells:
        if cell.cell_type == "code":
            assert not errors(cell), f"{nbgrader_meta(cell).get('grade_id')}: {errors(cell)}"
    tests = [c for c in cells if nbgrader_meta(c).get("grade") and c.cell_type == "code"]
    assert len(tests) == 3
    for number, cell in enumerate(tests, start=1):
        points = float(nbgrader_meta(cell)["points"])
        assert score(cell) == points, f"{nbgrader_meta(cell)['grade_id']} scores {score(cell)}/{points}: {cell.outputs}"
        printed = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        assert f"Exercise {number}:" in printed
