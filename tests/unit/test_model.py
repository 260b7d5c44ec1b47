"""The result model: one status enum with every reader's text, typed results that store as the kit's JSON."""

from __future__ import annotations

import json
from dataclasses import replace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from autograder.model import (
    BATCH,
    INTAKE,
    PARTIAL_NOTE,
    RUN,
    CheckResult,
    GradingResult,
    RunOutcome,
    Status,
    Summary,
    cell_errors,
    cell_label,
    cells_timed_out,
    check_metrics,
    while_running,
)


def test_every_status_says_what_it_is_to_each_reader():
    for status in Status:
        assert status.kind in (RUN, INTAKE, BATCH)
        assert status.instructor, status
        if status.kind in (RUN, INTAKE) or status is Status.GRADER_ERROR:  # what a student's line can hold
            assert status.student and status.gradescope == f"{status.student}.", status
    assert len({s.value for s in Status}) == len(Status)
    assert Status.TIMEOUT.student == "Your notebook did not finish in time"
    assert Status.UNREADABLE.instructor == "corrupt notebook"
    assert Status.GRADER_ERROR.gradescope == "The grader failed on this submission; your instructor will look at it."
    assert json.dumps({"status": Status.UP_TO_DATE}) == '{"status": "up to date"}'


def test_run_statuses_come_only_from_the_run():
    assert Status.of_run("too_much_disk") is Status.TOO_MUCH_DISK
    assert Status.of_run("cell_timeout") is Status.CELL_TIMEOUT
    assert Status.of_run("graded") is Status.ERROR and Status.of_run("empty") is Status.ERROR
    assert Status.of_run("<b>x</b>") is Status.ERROR and Status.of_run(None) is Status.ERROR


def checks() -> list[CheckResult]:
    return [
        CheckResult("test_val_auc_threshold", "test_fit", "Val AUC", 2.0, True, 2.0, values={"val_auc": 0.97}),
        CheckResult(
            "test_reported_val_auc_is_honest",
            "test_fit",
            "Honest",
            2.0,
            False,
            0.0,
            "the history lies",
            values={"reported_val_auc": 0.999, "honesty_gap": 0.029},
        ),
        CheckResult("test_hidden_auc", "test_fit", "Hidden", 2.0, True, 2.0, values={"hidden_auc": 0.98, "other": "x"}),
    ]


def executed_notebook() -> str:
    nb = new_notebook(cells=[new_code_cell("1/0"), new_code_cell("assert False"), new_code_cell("x = 1")])
    nb.cells[0].metadata["nbgrader"] = {"grade_id": "compile", "solution": True, "grade": False}
    nb.cells[1].metadata["nbgrader"] = {"grade_id": "test_compile", "grade": True, "solution": False, "points": 5}
    nb.cells[0].outputs = [new_output("error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])]
    nb.cells[1].outputs = [new_output("error", ename="AssertionError", evalue="", traceback=[])]
    return nbformat.writes(nb)


def test_summarize_a_result():
    outcome = RunOutcome(Status.OK, "", True, seconds=7.5, peak_rss_mb=800.0)
    graded = GradingResult.of_run(outcome, executed_notebook(), checks(), check_seconds=1.5, seconds=9.25, evidence={})
    summary = Summary.of_result(graded, "the-key", "the-digest")
    assert (summary.status, summary.key, summary.submission, summary.sandboxed) == (
        Status.OK,
        "the-key",
        "the-digest",
        True,
    )
    assert (summary.score, summary.max_score) == (4.0, 6.0) == (graded.score, graded.max_score)
    assert (summary.seconds, summary.execute_seconds, summary.check_seconds) == (9.25, 7.5, 1.5)
    assert summary.metrics == {
        "val_auc_regraded": 0.97,
        "val_auc_reported": 0.999,
        "honesty_gap": 0.029,
        "hidden_auc": 0.98,
    }
    assert summary.cell_errors == [
        {"cell": "compile", "ename": "ZeroDivisionError", "test": False},
        {"cell": "test_compile", "ename": "AssertionError", "test": True},
    ]
    assert Summary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary
    assert cell_errors(None) == [] and cell_errors("not json") == []
    assert check_metrics([]) == {}


def test_summaries_written_before_the_model_still_read():
    """The summary files of the kit before this model: a graded student and one without a notebook."""
    graded = {
        "key": "k",
        "submission": "d",
        "status": "ok",
        "message": "",
        "sandboxed": True,
        "seconds": 9.1,
        "execute_seconds": 8.0,
        "check_seconds": 1.1,
        "peak_rss_mb": 790.2,
        "score": 20.0,
        "max_score": 20.0,
        "checks": [
            {
                "id": "test_x",
                "cell": "test_fit",
                "name": "X",
                "points": 2.0,
                "passed": True,
                "score": 2.0,
                "message": "",
                "values": {},
                "detail": "",
            }
        ],
        "metrics": {"hidden_auc": 0.98},
        "cell_errors": [],
        "rechecked": [],
        "gradebook_key": "k",
        "autograded_at": "2026-11-20T10:00:00+00:00",
        "notes": [],
    }
    absent = {
        "key": None,
        "status": "no_submission",
        "message": "nothing was submitted",
        "sandboxed": None,
        "seconds": 0.0,
        "execute_seconds": 0.0,
        "check_seconds": 0.0,
        "peak_rss_mb": 0.0,
        "score": 0.0,
        "max_score": 20.0,
        "checks": [],
        "metrics": {},
        "notes": [],
    }
    old = Summary.from_dict(graded)
    assert old.status is Status.OK and old.checks[0].passed and old.gradebook_key == "k"
    assert old.to_dict() == {
        **graded,
        "code_group": None,
        "reused_from": None,  # fields added later: empty
        "partial": False,
        "limits_by": None,
    }
    missing = Summary.from_dict(absent)
    assert missing.status is Status.NO_SUBMISSION and not missing.graded and missing.cell_errors == []


def test_results_store_as_the_kit_s_json_and_recheck_in_place():
    graded = GradingResult(
        Status.TIMEOUT,
        "did not finish within 900 s",
        True,
        901.0,
        900.0,
        1.0,
        3000.0,
        None,
        checks(),
        evidence={"evidence.json": b"{}"},
    )
    data = json.loads(json.dumps(graded.to_dict()))
    assert "evidence" not in data and data["status"] == "timeout" and data["version"] == 1
    assert GradingResult.from_dict({**data, "evidence_kept": ["evidence.json"]}) == GradingResult(
        **{**graded.__dict__, "evidence": None}
    )
    fresh = CheckResult("test_reported_val_auc_is_honest", "test_fit", "Honest", 2.0, True, 2.0)
    again = graded.with_check(fresh, "f" * 64, {"evidence.json": b"{}"})
    assert [c.id for c in again.checks] == [c.id for c in graded.checks]  # same place, same order
    assert again.check(fresh.id) == fresh and again.score == 6.0 and graded.score == 4.0
    assert again.rechecked == [{"check": fresh.id, "job": "f" * 16}]
    with pytest.raises(ValueError):
        Status("not a status")


def test_a_cell_timeout_is_its_own_run_status_with_the_cell_and_the_limit_named():
    assert (Status.CELL_TIMEOUT.kind, Status.CELL_TIMEOUT.instructor) == (RUN, "cell timed out")
    assert Status.CELL_TIMEOUT.gradescope == "A cell of your notebook was stopped at its time limit."
    assert cells_timed_out(["compile"], 600) == "cell `compile` stopped after 600 s (Sandbox.cell_timeout)"
    assert (
        cells_timed_out(["compile", "cell 7"], 5)
        == "cells `compile`, `cell 7` stopped after 5 s each (Sandbox.cell_timeout)"
    )
    assert while_running("fit") == "while cell `fit` was running"
    nb = nbformat.reads(executed_notebook(), as_version=4)
    assert [cell_label(c, i) for i, c in enumerate(nb.cells)] == ["compile", "test_compile", "cell 3"]
    assert cell_label({"metadata": {"nbgrader": {"grade_id": "x" * 500}}}, 0) == "x" * 100


def test_a_timed_out_result_keeps_the_grade_its_checks_give():
    outcome = RunOutcome(Status.CELL_TIMEOUT, "cell `fit` stopped after 600 s (Sandbox.cell_timeout)", True, 700.0)
    graded = GradingResult.of_run(outcome, executed_notebook(), checks(), check_seconds=1.0, seconds=701.0, evidence={})
    summary = Summary.of_result(graded, "k", "d")
    assert (summary.status, summary.score, summary.max_score) == (Status.CELL_TIMEOUT, 4.0, 6.0)
    assert summary.message == "cell `fit` stopped after 600 s (Sandbox.cell_timeout)"
    assert Summary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary


def test_a_result_graded_on_the_work_recorded_before_the_run_ended_is_marked_and_stored():
    outcome = RunOutcome(Status.OUT_OF_MEMORY, "used more than 4096 MB of memory while cell `plot` was running")
    graded = GradingResult.of_run(
        outcome, None, checks(), check_seconds=1.0, seconds=50.0, evidence={"evidence.json": b"{}"}, partial=True
    )
    assert graded.partial and not GradingResult.of_run(outcome, None, [], 0.0, 0.0, evidence={}).partial
    data = json.loads(json.dumps(graded.to_dict()))
    assert data["partial"] is True
    assert GradingResult.from_dict(data).partial is True
    older = {k: v for k, v in data.items() if k != "partial"}  # a stored result without the flag
    assert GradingResult.from_dict(older).partial is False
    summary = Summary.of_result(graded, "k", "d")
    assert summary.partial and summary.score == 4.0
    assert Summary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary
    assert Summary.from_dict({k: v for k, v in summary.to_dict().items() if k != "partial"}).partial is False
    assert PARTIAL_NOTE == "graded on the work recorded before the run ended"


def test_runs_whose_limits_only_a_watchdog_kept_are_marked_wherever_their_status_shows():
    from autograder.course.autograde import report_text
    from autograder.course.exports import gradescope_results
    from autograder.course.gradebook import Row
    from autograder.course.report import attention
    from autograder.model import UNENFORCED_NOTE, limits_unenforced

    check = CheckResult("test_x", "test_fit", "X", 1.0, True, 1.0)
    watched = GradingResult(
        status=Status.OK,
        message="",
        sandboxed=True,
        seconds=1.0,
        execute_seconds=1.0,
        check_seconds=0.1,
        peak_rss_mb=1.0,
        executed=None,
        checks=[check],
        limits_by="watchdog",
    )
    kernel = replace(watched, limits_by="v2")
    assert limits_unenforced(True, "watchdog") and not limits_unenforced(True, "v1")
    assert not limits_unenforced(False, "watchdog") and not limits_unenforced(True, None)  # unsandboxed: said so
    assert UNENFORCED_NOTE in report_text([check], 1.0, watched)
    assert UNENFORCED_NOTE not in report_text([check], 1.0, kernel)
    for result, marked in ((watched, True), (kernel, False)):
        summary = Summary.of_result(result, "k", "d")
        assert Row.of_summary("s", Status.GRADED, summary, [], executed=True).unenforced is marked
        assert (UNENFORCED_NOTE in gradescope_results(summary, set(), "hidden")["output"]) is marked
        assert any(r["reason"] == UNENFORCED_NOTE for r in attention({"s": summary})) is marked
