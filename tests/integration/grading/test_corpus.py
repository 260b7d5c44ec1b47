"""The corpus of submissions graded end to end, by both grading paths.

All variants are submitted to one temporary course and graded by one
``spamkit grade --workers 2`` (the Dask batch; its gradebook is written by
nbgrader's autograde with the kit's GradeSubmission); each student's
per-check results (``.kit/results``) and per-cell gradebook scores must match
the variant's expectation (tests/corpus.py). Then a valid, a wrong and a
broken variant lose their stored result and are graded again by plain
``nbgrader autograde --force`` (serial, the sandbox run inside nbgrader's
pipeline): that path must run each of them again and agree exactly. The
two paths share every step after the run, so three notebooks show they agree
at the cost of three runs instead of a second pass over the class.

Run with ``-s`` to see the table (variant, expected, got, seconds).
"""

from __future__ import annotations

import time

import pytest
from corpus import VARIANTS, cell_scores, check_table
from kit_testing import ASSIGNMENT, events, gradebook_scores, make_course, nbgrader, spamkit, submit, summary

from autograder.course.store import ResultStore

TABLE = check_table()


# Graded a second time by plain nbgrader: one valid, one wrong (judged on the weights), one broken.
SAMPLE = ("plot_pandas", "fabricated_val_auc", "fit_exception")


def _results(root, students) -> dict:
    return {s: {"summary": summary(root, s), "gradebook": gradebook_scores(root, s)} for s in students}


def _grade_all(root):
    started = time.monotonic()
    proc = spamkit(root, "grade", "--force", "--workers", "2")
    stored = sorted(p.name for p in (root / ".kit" / "store").glob("*.json"))
    return {
        "wall": time.monotonic() - started,
        "log": proc.stdout + proc.stderr,
        "results": _results(root, [v.name for v in VARIANTS]),
        "stored": stored,
    }


def _grade_with_nbgrader(root, students):
    """Each student's stored result discarded, then graded by plain ``nbgrader autograde``."""
    store = ResultStore(root)
    for student in students:
        store.discard(summary(root, student)["key"])
    logs = {s: nbgrader(root, "autograde", ASSIGNMENT, "--force", "--student", s) for s in students}
    return {
        "results": _results(root, students),
        "logs": {s: p.stdout + p.stderr for s, p in logs.items()},
        "stored": {s: (root / ".kit" / "store" / f"{summary(root, s)['key']}.json").is_file() for s in students},
    }


def _executed(root) -> list[str]:
    """Students whose notebook a spamkit batch ran, in the order the results landed."""
    return [e["student"] for e in events(root) if e["event"] == "executed"]


def _got(result) -> dict[str, bool]:
    return {c["id"]: c["passed"] for c in result["summary"]["checks"]}


def _outcome(result) -> list[tuple]:
    return [(c["id"], c["passed"], c["score"], c["message"]) for c in result["summary"]["checks"]]


def _print_table(title, graded):
    print(
        f"\n{title}: {len(VARIANTS)} submissions in {graded['wall']:.0f} s wall "
        f"({graded['wall'] / len(VARIANTS):.1f} s each)"
    )
    print(f"{'variant':<20} {'kind':<6} {'expected':>8} {'got':>6} {'gradebook':>9} {'seconds':>7}  mismatches")
    for v in VARIANTS:
        expected = v.expected(TABLE)
        result = graded["results"][v.name]
        got = _got(result)
        wrong = sorted(c for c in expected if got.get(c) != expected[c])
        book = {k: s for k, s in result["gradebook"].items() if k in cell_scores(expected, TABLE)}
        print(
            f"{v.name:<20} {v.kind:<6} {sum(cell_scores(expected, TABLE).values()):>8g} "
            f"{result['summary']['score']:>6g} {sum(book.values()):>9g} {result['summary']['seconds']:>7.1f}  "
            f"{', '.join(wrong) or '-'}"
        )


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = make_course(tmp_path_factory.mktemp("corpus"))
    for variant in VARIANTS:
        submit(root, variant.name, variant.notebook(root))
    batch = _grade_all(root)
    batch["executed"] = _executed(root)
    _print_table("spamkit grade, 2 Dask workers", batch)
    return {"root": root, "batch": batch, "nbgrader": _grade_with_nbgrader(root, SAMPLE)}


def test_corpus_names_are_unique_and_checks_known():
    assert len({v.name for v in VARIANTS}) == len(VARIANTS)
    for variant in VARIANTS:
        variant.expected(TABLE)  # raises on an unknown check id
        assert all(why.strip() for why in variant.fails.values()), variant.name
    assert {v.kind for v in VARIANTS} == {"valid", "wrong", "broken"}


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_variant_gets_its_expected_checks_and_scores(graded, variant):
    result = graded["batch"]["results"][variant.name]
    report = result["summary"]
    assert report["status"] == "ok" and report["sandboxed"], report["message"]
    expected = variant.expected(TABLE)
    ids = [c["id"] for c in report["checks"]]
    assert sorted(ids) == sorted(TABLE), "every check must report exactly once"
    got = _got(result)
    wrong = {
        c: (expected[c], got[c], next(r["message"] for r in report["checks"] if r["id"] == c))
        for c in expected
        if got[c] != expected[c]
    }
    assert not wrong, f"{variant.name}: (expected, got, message) per check: {wrong}"
    for check in report["checks"]:
        assert check["detail"] == "", f"grader error in {check['id']}: {check['detail']}"
        assert bool(check["message"]) != check["passed"], f"{check['id']}: a failure needs a message, a pass none"
        assert check["score"] == (check["points"] if check["passed"] else 0.0)
    scores = cell_scores(expected, TABLE)
    assert report["score"] == sum(scores.values())
    assert {cell: result["gradebook"][cell] for cell in scores} == scores, "gradebook per-cell scores"


def test_every_notebook_ran_once(graded):
    batch = graded["batch"]
    assert len(batch["stored"]) == len(VARIANTS), "one stored result per submission (no two share code)"
    assert sorted(batch["executed"]) == sorted(v.name for v in VARIANTS), batch["log"][-3000:]


def test_plain_nbgrader_runs_again_and_agrees(graded):
    assert set(SAMPLE) <= {v.name for v in VARIANTS}
    again = graded["nbgrader"]
    for student in SAMPLE:
        assert f"Grading {student} in the sandbox" in again["logs"][student], again["logs"][student][-3000:]
        assert again["stored"][student], "the fresh run is stored again"
        a, b = graded["batch"]["results"][student], again["results"][student]
        assert _outcome(a) == _outcome(b), student
        assert a["gradebook"] == b["gradebook"], student
