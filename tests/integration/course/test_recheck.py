"""Regrading one check for the class from the kept evidence, without running a notebook again."""

from __future__ import annotations

import pytest
from kit_testing import events, gradebook_scores, make_course, open_course, spamkit, submit, summary, variant

from autograder import api
from autograder.model import Status

CHECK = "test_hidden_auc"


def check(root, student: str, check_id: str = CHECK) -> dict:
    return next(c for c in summary(root, student)["checks"] if c["id"] == check_id)


def test_one_check_regraded_for_the_class_without_running_notebooks(tmp_path):
    root = make_course(tmp_path / "course")
    submit(root, "ann", variant(root, "reference"))
    submit(root, "ben", variant(root, "no-validation"))
    spamkit(root, "grade", "--workers", "2")
    before = {s: summary(root, s) for s in ("ann", "ben")}
    assert check(root, "ann")["passed"] and check(root, "ben")["passed"]
    ran = [e for e in events(root) if e["event"] == "executed"]

    # A stricter threshold for the hidden AUC check: only that check changes, nothing trains again.
    rows = api.recheck(open_course(root, {"Grading": {"hidden_auc_threshold": 0.9999}}), CHECK)
    assert [(r.student, r.status) for r in rows] == [("ann", Status.RECHECKED), ("ben", Status.RECHECKED)]
    assert rows[0].message == f"{CHECK}: 2 -> 0"
    for student in ("ann", "ben"):
        after = summary(root, student)
        assert not check(root, student)["passed"] and check(root, student)["score"] == 0
        assert "below 0.9999" in check(root, student)["message"]
        assert after["score"] == before[student]["score"] - 2
        assert after["score"] == pytest.approx(sum(gradebook_scores(root, student).values()))
        others = [c for c in after["checks"] if c["id"] != CHECK]
        assert others == [c for c in before[student]["checks"] if c["id"] != CHECK]
        assert [r["check"] for r in after["rechecked"]] == [CHECK]
        assert after["metrics"]["hidden_auc"] == before[student]["metrics"]["hidden_auc"]
    assert [e for e in events(root) if e["event"] == "executed"] == ran

    # ben changes his notebook: his kept evidence no longer belongs to it, so he is not rechecked.
    changed = variant(root, "no-validation")
    changed.cells[-1].source += "\n# edited after grading"
    submit(root, "ben", changed)
    proc = spamkit(root, "grade", "--check", CHECK, check=False)
    assert proc.returncode == 1
    skipped = [e for e in events(root) if e["event"] == "not_rechecked"]
    assert [e["student"] for e in skipped] == ["ben"] and "spamkit grade --student ben" in skipped[0]["why"]
    assert check(root, "ann")["passed"] and summary(root, "ann")["score"] == before["ann"]["score"]
    assert summary(root, "ben")["score"] == before["ben"]["score"] - 2  # untouched
    assert [e for e in events(root) if e["event"] == "executed"] == ran

    unknown = spamkit(root, "grade", "--check", "test_nothing", check=False)
    assert unknown.returncode == 2 and CHECK in unknown.stdout
    both = spamkit(root, "grade", "--check", CHECK, "--force", check=False)
    assert both.returncode == 2 and "--force" in both.stdout
