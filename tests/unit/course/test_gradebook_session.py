"""One gradebook session for a batch: nbgrader's writes in savepoints of one transaction, committed by the batch."""

from __future__ import annotations

import pytest
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import AssignLatePenalties, ClearOutput, OverwriteCells, OverwriteKernelspec, SaveAutoGrades

from autograder.course.course import path_with_venv_tools
from autograder.course.gradebook_session import (
    AssignLatePenaltiesInSession,
    OverwriteCellsInSession,
    OverwriteKernelspecInSession,
    SaveAutoGradesInSession,
    SessionGradebook,
    in_session,
)


@pytest.fixture(autouse=True)
def alembic_on_path(monkeypatch):
    monkeypatch.setenv("PATH", path_with_venv_tools())  # nbgrader runs `alembic` to make a new gradebook


def students(url: str) -> set[str]:
    """The students another connection sees (what is committed)."""
    with Gradebook(url) as gb:
        return {s.id for s in gb.students}


def test_writes_are_seen_by_others_only_after_commit_and_a_failed_student_leaves_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    Gradebook(url).close()  # nbgrader makes the tables
    gb = SessionGradebook(url)
    try:
        with gb.student():
            gb.update_or_create_student("ann")  # nbgrader commits inside: a savepoint is released, no more
        with pytest.raises(RuntimeError), gb.student():
            gb.update_or_create_student("ben")
            raise RuntimeError("this student's notebook broke")
        with gb.student():
            gb.update_or_create_student("cid")
        assert {s.id for s in gb.students} == {"ann", "cid"}  # ben's writes were undone, the others kept
        assert students(url) == set()  # nothing committed yet
        gb.commit()
        assert students(url) == {"ann", "cid"}
        with gb.student():
            gb.update_or_create_student("dan")
    finally:
        gb.close()  # not committed: dan is rolled back
    assert students(url) == {"ann", "cid"}


def test_source_cells_are_looked_up_once_and_a_missing_one_is_not_kept(tmp_path):
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as gb:
        gb.add_assignment("lab")
        gb.add_notebook("nb", "lab", kernelspec='{"name": "python3"}')
        gb.add_grade_cell("test_a", "nb", "lab", max_score=5, cell_type="code")
        gb.add_source_cell("test_a", "nb", "lab", cell_type="code", locked=True, source="assert True", checksum="x")
    gb = SessionGradebook(url)
    try:
        first = gb.find_source_cell("test_a", "nb", "lab")
        assert gb.find_source_cell("test_a", "nb", "lab") is first and first.source == "assert True"
        assert gb.find_graded_cell("test_a", "nb", "lab").max_score == 5
        assert gb.kernelspec("nb", "lab") == '{"name": "python3"}'
        for _ in range(2):
            with pytest.raises(MissingEntry):
                gb.find_source_cell("nope", "nb", "lab")
    finally:
        gb.close()


def test_in_session_swaps_only_nbgraders_gradebook_steps():
    configured = [
        "nbgrader.preprocessors.OverwriteCells",
        OverwriteKernelspec,
        ClearOutput,
        "nbgrader.preprocessors.SaveAutoGrades",
        "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.IgnorePattern",
    ]
    assert in_session(configured) == [
        OverwriteCellsInSession,
        OverwriteKernelspecInSession,
        ClearOutput,
        SaveAutoGradesInSession,
        AssignLatePenaltiesInSession,
        "nbgrader.preprocessors.IgnorePattern",
    ]
    for kit, nbgrader in (
        (OverwriteCellsInSession, OverwriteCells),
        (SaveAutoGradesInSession, SaveAutoGrades),
        (AssignLatePenaltiesInSession, AssignLatePenalties),
    ):
        assert issubclass(kit, nbgrader)  # nbgrader's configuration (e.g. add_missing_cells) applies to them


def test_a_large_batch_prepares_beside_the_client_on_the_cores_it_leaves():
    from traitlets.config import Config

    from autograder.course.gradebook import BatchClient

    automatic = BatchClient()
    assert [automatic.preparers(n, cores) for n, cores in ((39, 2), (40, 2), (500, 4), (500, 1))] == [0, 1, 3, 0]
    assert BatchClient(config=Config({"BatchClient": {"prepare_processes": 0}})).preparers(500, 4) == 0
    assert BatchClient(config=Config({"BatchClient": {"prepare_processes": 2}})).preparers(5, 1) == 2
