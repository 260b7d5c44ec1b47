"""Identical code is run once: the reused result equals a fresh run, check by check.

A small class graded by ``spamkit grade`` on two local workers: ann (the
reference), bob (ann's code with other comments, blank lines and his own
analysis), cid (a byte-for-byte copy of ann's file), dan (a compile cell that
raises) and eve (dan's code with her own comments). Ann's run grades bob and
cid; dan's run prints a traceback of dan's text, so eve gets a run of her
own. Then bob's and ann's notebooks are graded afresh through the same engine
and job: the records must be identical (grading is deterministic).
"""

from __future__ import annotations

import nbformat
import pytest
from kit_testing import (
    ASSIGNMENT,
    autograded_scores,
    events,
    gradebook_scores,
    make_course,
    open_course,
    spamkit,
    submissions_in_gradebook,
    submit,
    summary,
    variant,
)

from autograder import api
from autograder.course.prepare import Sanitizer
from autograder.grading import engine


def answered(nb, analysis: str, comment: str | None = None):
    """The notebook with its own analysis; with ``comment``, its code re-commented and spread out."""
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)  # a copy, sources as text
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "analysis":
            cell.source = analysis
        elif comment and grade_id in ("compile", "fit", "plot_history"):
            lines = [line.split("  #")[0].rstrip() for line in cell.source.splitlines()]
            lines[-1] += f"  # {comment}"
            cell.source = f"# {comment}\n\n" + "\n\n".join(lines) + "\n\n"
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = make_course(tmp_path_factory.mktemp("identical") / "course")
    reference, broken = variant(root, "reference"), variant(root, "broken")
    ann = submit(root, "ann", answered(reference, "Ann: the curves meet."))
    submit(root, "bob", answered(reference, "Bob: no overfitting in one epoch.", comment="bob's way"))
    submit(root, "cid", ann.read_bytes())
    submit(root, "dan", answered(broken, "Dan's answer."))
    submit(root, "eve", answered(broken, "Eve's answer.", comment="eve's way"))
    proc = spamkit(root, "grade", "--workers", "2", env={"COLUMNS": "240"})  # table rows on one line each
    return root, proc


def autograded(root, student):
    return nbformat.read(root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def records(checks: list) -> list[dict]:
    return [c if isinstance(c, dict) else c.to_dict() for c in checks]


def test_identical_code_runs_once_and_each_student_is_graded(graded):
    root, proc = graded
    log = events(root)
    assert sorted(e["student"] for e in log if e["event"] == "executed") == ["ann", "dan", "eve"]
    assert {e["student"]: e["run_of"] for e in log if e["event"] == "reused"} == {"bob": "ann", "cid": "ann"}
    ann, bob, cid, dan, eve = (summary(root, s) for s in ("ann", "bob", "cid", "dan", "eve"))
    assert ann["code_group"] == bob["code_group"] == cid["code_group"] != dan["code_group"] == eve["code_group"]
    assert (ann["reused_from"], bob["reused_from"], cid["reused_from"]) == (None, "ann", "ann")
    assert (dan["reused_from"], eve["reused_from"]) == (None, None)  # dan's traceback is not eve's text
    assert records(bob["checks"]) == records(ann["checks"]) == records(cid["checks"])
    assert submissions_in_gradebook(root) == {s: 1 for s in ("ann", "bob", "cid", "dan", "eve")}
    for student in ("bob", "cid"):
        assert gradebook_scores(root, student) == {**gradebook_scores(root, "ann"), "analysis": 0.0}
        assert autograded_scores(root, student) == ann["score"] == 20.0
    assert "identical code: graded from ann's run" in " ".join(proc.stdout.split())
    assert "3 notebook(s) run now, 2 graded from a classmate's run of identical code" in " ".join(proc.stdout.split())


def test_each_student_keeps_their_own_notebook_and_gets_the_run_s_outputs(graded):
    root, _ = graded
    bob, ann = autograded(root, "bob"), autograded(root, "ann")
    assert cell(bob, "analysis").source == "Bob: no overfitting in one epoch."
    assert "bob's way" in cell(bob, "compile").source and "Ann: the curves meet." not in nbformat.writes(bob)
    assert cell(bob, "fit").outputs and cell(bob, "fit").execution_count == cell(ann, "fit").execution_count
    assert len([o for o in cell(bob, "plot_history").outputs if "image/png" in o.get("data", {})]) == 3
    assert cell(bob, "test_fit").outputs[0]["text"] == cell(ann, "test_fit").outputs[0]["text"]
    # eve ran her own notebook: her traceback shows her own line, dan's shows his
    eve_error = "".join(str(o.get("traceback")) for o in cell(autograded(root, "eve"), "compile").outputs)
    dan_error = "".join(str(o.get("traceback")) for o in cell(autograded(root, "dan"), "compile").outputs)
    assert "NameError" in dan_error and "eve's way" in eve_error and "eve's way" not in dan_error


def test_a_reused_result_equals_a_fresh_run_check_by_check(graded):
    """Bob's notebook graded afresh gives the records ann's run gave him; ann's again gives the same."""
    root, _ = graded
    course = open_course(root)
    course.grade_with(2)  # the batch's job: two sandboxes at once
    sanitizer = Sanitizer(course)
    entries = {e.student: e for e in course.entries(["ann", "bob"])}
    for student in ("bob", "ann"):
        p = sanitizer.prepare(entries[student])
        assert p.key == summary(root, student)["key"]  # the same job and code as in the batch
        fresh = engine.grade_notebook(p.submission.nb_json, p.submission.files, course.job(), course.notebook)
        assert records(fresh.checks) == records(summary(root, student)["checks"]), student
        assert fresh.score == 20.0


def test_the_class_report_names_the_group_as_a_hint(graded):
    root, _ = graded
    page = " ".join(api.report(open_course(root)).read_text().split())
    assert "Identical code (2 groups)" in page and "ann, bob, cid" in page and "dan, eve" in page
    assert "not an accusation" in page and "not by itself evidence that anyone copied" in page
