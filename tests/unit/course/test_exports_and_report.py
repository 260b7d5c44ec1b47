"""Exports and the class report from summaries alone (no gradebook): Gradescope, per-check CSV, attention list."""

from __future__ import annotations

import csv

from autograder.course.exports import gradescope_results, write_checks_csv
from autograder.course.report import attention, check_table, identical_groups, render
from autograder.model import CheckResult, Status, Summary
from autograder.settings import Grading


def summaries() -> dict[str, Summary]:
    ok = [
        CheckResult("a", "c1", "A", 1.0, True, 1.0),
        CheckResult("test_reported_val_auc_is_honest", "c2", "Honest", 2.0, False, 0.0, "the history lies"),
        CheckResult(
            "c", "c2", "C", 2.0, False, 0.0, "the grader could not complete this check", detail="KeyError: 'val_auc'"
        ),
    ]
    return {
        "ann": Summary(
            Status.OK,
            key="k1",
            sandboxed=True,
            seconds=9.0,
            execute_seconds=8.0,
            check_seconds=1.0,
            score=1.0,
            max_score=5.0,
            checks=ok,
            metrics={"honesty_gap": 0.2, "hidden_auc": 0.97},
            cell_errors=[{"cell": "fit", "ename": "ValueError", "test": False}],
        ),
        "ben": Summary(
            Status.TIMEOUT,
            "did not finish within 900 s",
            key="k2",
            sandboxed=True,
            seconds=901.0,
            score=0.0,
            max_score=5.0,
            checks=[CheckResult("a", "c1", "A", 1.0, False, 0.0, "no model")],
        ),
        "cid": Summary.not_graded(
            Status.UNREADABLE,
            "spam_transformer.ipynb is not a readable notebook",
            5.0,
            ["other notebooks ignored: x.ipynb"],
        ),
    }


def test_gradescope_results_per_student():
    found = summaries()
    ann = gradescope_results(found["ann"], {"a"}, "after_published")
    assert ann["output"] == "Your notebook ran to the end."
    assert [(t["number"], t["visibility"], t["status"], t["output"]) for t in ann["tests"]] == [
        ("1.1", "visible", "passed", ""),
        ("2.1", "after_published", "failed", "the history lies"),
        ("2.2", "after_published", "failed", "the grader could not complete this check"),
    ]
    assert "KeyError" not in str(ann)  # the grader's detail is for the instructor only
    ben = gradescope_results(found["ben"], set(), "hidden")
    assert ben["output"] == "Your notebook did not finish in time.\ndid not finish within 900 s"
    assert ben["execution_time"] == 901.0 and ben["tests"][0]["visibility"] == "hidden"
    cid = gradescope_results(found["cid"], set(), "hidden")
    assert cid["tests"] == [] and cid["score"] == 0.0
    assert cid["output"].startswith("The submitted notebook file is corrupt and cannot be opened.")


def test_checks_csv_has_a_column_per_check(tmp_path):
    path = write_checks_csv(summaries(), tmp_path / "checks.csv", {"ann": (0.25, 3600.0)})
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == [
        "student_id",
        "status",
        "a",
        "test_reported_val_auc_is_honest",
        "c",
        "total",
        "max_score",
        "late_submission_penalty",
        "score",
    ]
    assert rows[1:] == [
        ["ann", "ok", "1", "0", "0", "1", "5", "0.25", "0.75"],
        ["ben", "timeout", "0", "0", "0", "0", "5", "0", "0"],
        ["cid", "unreadable", "0", "0", "0", "0", "5", "0", "0"],
    ]


def test_gradescope_takes_the_late_penalty_and_never_sends_a_grader_error(tmp_path):
    import json

    import pytest

    from autograder.course.exports import write_gradescope

    found = summaries()
    ann = gradescope_results(found["ann"], set(), "hidden", late_penalty=0.25, seconds_late=90000.0)
    assert ann["score"] == 0.75 and "1 day 1 hour after the due date" in ann["output"]
    assert "takes 0.25 of the 1 points" in ann["output"]
    assert gradescope_results(found["ann"], set(), "hidden", late_penalty=5.0)["score"] == 0.0  # never below 0
    found["dee"] = Summary.not_graded(Status.GRADER_ERROR, "KilledWorker", 5.0, [])
    with pytest.raises(ValueError):
        gradescope_results(found["dee"], set(), "hidden")
    stale = tmp_path / "dee" / "results.json"
    stale.parent.mkdir()
    stale.write_text(json.dumps({"score": 3.0}))  # an earlier export's file
    (tmp_path / "ben").mkdir()
    (tmp_path / "ben" / "results.json").write_text("{}")
    written = write_gradescope(found, tmp_path, [], "hidden", held={"ben": object()})
    assert sorted(p.parent.name for p in written) == ["ann", "cid"]
    assert not stale.exists() and not (tmp_path / "ben" / "results.json").exists()


def test_the_class_report_names_who_needs_attention_and_why():
    found = summaries()
    rows = [(r["student"], r["reason"]) for r in attention(found)]
    assert rows == [
        ("ann", "errors while running"),
        ("ann", "honesty check failed"),
        ("ann", "grader error in c"),
        ("ben", "timed out"),
        ("cid", "corrupt notebook"),
        ("cid", "note"),
    ]
    assert [(c["id"], c["passed"], c["total"]) for c in check_table(found)] == [
        ("a", 1, 2),
        ("test_reported_val_auc_is_honest", 0, 1),
        ("c", 0, 1),
    ]
    found["dan"] = Summary(Status.OK, "<script>alert(1)</script>", key="k4", score=5.0, max_score=5.0)
    page = render("course", "lab", found, Grading())
    assert page.count("data:image/png;base64,") == 4  # scores, pass rates, AUCs, time
    assert "3 graded" in " ".join(page.split()) and "<script>alert" not in page


def stopped() -> dict[str, Summary]:
    """Three runs that ended badly, each naming its cell and limit; the checks still scored."""
    checks = [CheckResult("a", "test_compile", "A", 1.0, True, 1.0)]
    return {
        "eve": Summary(
            Status.CELL_TIMEOUT,
            "cell `compile` stopped after 600 s (Sandbox.cell_timeout)",
            key="k5",
            score=1.0,
            max_score=1.0,
            checks=checks,
            cell_errors=[{"cell": "compile", "ename": "CellTimeout", "test": False}],
        ),
        "fay": Summary(
            Status.KERNEL_DIED,
            "the Python kernel died while cell `fit` was running",
            key="k6",
            score=1.0,
            max_score=1.0,
            checks=checks,
            cell_errors=[{"cell": "fit", "ename": "KernelDied", "test": False}],
        ),
        "gus": Summary(
            Status.TIMEOUT,
            "stopped after 900 s (Sandbox.notebook_timeout) while cell `<img src=x onerror=alert(1)>` was running",
            key="k7",
            score=1.0,
            max_score=1.0,
            checks=checks,
        ),
    }


def test_timeouts_and_kernel_deaths_need_attention_with_the_cell_named():
    rows = [(r["student"], r["reason"], r["detail"]) for r in attention(stopped())]
    assert rows == [
        ("eve", "cell timed out", "cell `compile` stopped after 600 s (Sandbox.cell_timeout)"),
        ("eve", "errors while running", "compile: CellTimeout"),
        ("fay", "kernel died", "the Python kernel died while cell `fit` was running"),
        ("fay", "errors while running", "fit: KernelDied"),
        (
            "gus",
            "timed out",
            "stopped after 900 s (Sandbox.notebook_timeout) while cell `<img src=x onerror=alert(1)>` was running",
        ),
    ]
    page = render("course", "lab", stopped(), Grading())
    assert "cell `compile` stopped after 600 s (Sandbox.cell_timeout)" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page  # a label is data


def test_gradescope_tells_the_student_which_cell_stopped_and_keeps_the_score():
    found = {student: gradescope_results(summary, set(), "visible") for student, summary in stopped().items()}
    assert found["eve"]["output"] == (
        "A cell of your notebook was stopped at its time limit.\n"
        "cell `compile` stopped after 600 s (Sandbox.cell_timeout)"
    )
    assert found["fay"]["output"] == (
        "Your notebook's Python kernel died.\nthe Python kernel died while cell `fit` was running"
    )
    assert found["gus"]["output"].startswith(
        "Your notebook did not finish in time.\nstopped after 900 s (Sandbox.notebook_timeout) while cell `"
    )
    assert all(r["score"] == 1.0 and r["output_format"] == "text" for r in found.values())


def test_the_class_report_lists_identical_code_as_a_hint_not_an_accusation():
    found = summaries()
    for student, reused in (("eva", None), ("fay", "eva"), ("<b>gus</b>", "eva")):
        found[student] = Summary(Status.OK, key="k5", score=4.0, max_score=5.0, code_group="g" * 16, reused_from=reused)
    found["hal"] = Summary(Status.OK, key="k6", score=4.0, max_score=5.0, code_group="h" * 16)  # alone: no group
    assert identical_groups(found) == [
        {"group": "gggggggg", "students": ["<b>gus</b>", "eva", "fay"], "ran": "eva", "score": 4.0}
    ]
    page = " ".join(render("course", "lab", found, Grading()).split())
    assert "Identical code (1 group)" in page and "not an accusation" in page
    assert "not by itself evidence that anyone copied" in page
    assert "&lt;b&gt;gus&lt;/b&gt;, eva, fay" in page and "<b>gus</b>" not in page  # names are data
    assert "Identical code (0 groups)" in " ".join(render("course", "lab", summaries(), Grading()).split())
