"""The corpus of submissions graded end to end, by both grading paths.

All variants are submitted to one temporary course and graded by a single
plain ``nbgrader autograde spam_transformer --force`` (serial, the kit's
GradeSubmission in nbgrader's pipeline); each student's per-check results
(``.kit/results``) and per-cell gradebook scores must match the variant's
expectation (tests/corpus.py). The result store is then deleted and the class
is graded again by ``spamkit grade --force`` on two Dask workers: the second
pass must re-run every notebook and agree exactly.

Run with ``-s`` to see the table (variant, expected, got, seconds).
"""

from __future__ import annotations

import shutil
import time

import pytest

from corpus import VARIANTS, cell_scores, check_table
from kit_testing import ASSIGNMENT, events, gradebook_scores, make_course, nbgrader, spamkit, submit, summary

TABLE = check_table()


def _grade_all(root, batch: bool = False):
    started = time.monotonic()
    if batch:
        proc = spamkit(root, "grade", "--force", "--workers", "2")
    else:
        proc = nbgrader(root, "autograde", ASSIGNMENT, "--force")
    results = {v.name: {"summary": summary(root, v.name), "gradebook": gradebook_scores(root, v.name)}
               for v in VARIANTS}
    stored = sorted(p.name for p in (root / ".kit" / "store").glob("*.json"))
    return {"wall": time.monotonic() - started, "log": proc.stdout + proc.stderr, "results": results,
            "stored": stored}


def _executed(root) -> list[str]:
    """Students whose notebook a spamkit batch ran, in the order the results landed."""
    return [e["student"] for e in events(root) if e["event"] == "executed"]


def _got(result) -> dict[str, bool]:
    return {c["id"]: c["passed"] for c in result["summary"]["checks"]}


def _outcome(result) -> list[tuple]:
    return [(c["id"], c["passed"], c["score"], c["message"]) for c in result["summary"]["checks"]]


def _print_table(title, graded):
    print(f"\n{title}: {len(VARIANTS)} submissions in {graded['wall']:.0f} s wall "
          f"({graded['wall'] / len(VARIANTS):.1f} s each)")
    print(f"{'variant':<20} {'kind':<6} {'expected':>8} {'got':>6} {'gradebook':>9} {'seconds':>7}  mismatches")
    for v in VARIANTS:
        expected = v.expected(TABLE)
        result = graded["results"][v.name]
        got = _got(result)
        wrong = sorted(c for c in expected if got.get(c) != expected[c])
        book = {k: s for k, s in result["gradebook"].items() if k in cell_scores(expected, TABLE)}
        print(f"{v.name:<20} {v.kind:<6} {sum(cell_scores(expected, TABLE).values()):>8g} "
              f"{result['summary']['score']:>6g} {sum(book.values()):>9g} {result['summary']['seconds']:>7.1f}  "
              f"{', '.join(wrong) or '-'}")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = make_course(tmp_path_factory.mktemp("corpus"))
    for variant in VARIANTS:
        submit(root, variant.name, variant.notebook(root))
    first = _grade_all(root)
    _print_table("first pass", first)
    shutil.rmtree(root / ".kit" / "store")
    executed_before = len(_executed(root))
    second = _grade_all(root, batch=True)
    second["executed"] = _executed(root)[executed_before:]
    _print_table("second pass (result store deleted; spamkit grade, 2 Dask workers)", second)
    return {"root": root, "first": first, "second": second}


def test_corpus_names_are_unique_and_checks_known():
    assert len({v.name for v in VARIANTS}) == len(VARIANTS)
    for variant in VARIANTS:
        variant.expected(TABLE)  # raises on an unknown check id
        assert all(why.strip() for why in variant.fails.values()), variant.name
    assert {v.kind for v in VARIANTS} == {"valid", "wrong", "broken"}


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_variant_gets_its_expected_checks_and_scores(graded, variant):
    result = graded["first"]["results"][variant.name]
    report = result["summary"]
    assert report["status"] == "ok" and report["sandboxed"], report["message"]
    expected = variant.expected(TABLE)
    ids = [c["id"] for c in report["checks"]]
    assert sorted(ids) == sorted(TABLE), "every check must report exactly once"
    got = _got(result)
    wrong = {c: (expected[c], got[c], next(r["message"] for r in report["checks"] if r["id"] == c))
             for c in expected if got[c] != expected[c]}
    assert not wrong, f"{variant.name}: (expected, got, message) per check: {wrong}"
    for check in report["checks"]:
        assert check["detail"] == "", f"grader error in {check['id']}: {check['detail']}"
        assert bool(check["message"]) != check["passed"], f"{check['id']}: a failure needs a message, a pass none"
        assert check["score"] == (check["points"] if check["passed"] else 0.0)
    scores = cell_scores(expected, TABLE)
    assert report["score"] == sum(scores.values())
    assert {cell: result["gradebook"][cell] for cell in scores} == scores, "gradebook per-cell scores"


def test_second_pass_reruns_and_agrees(graded):
    first, second = graded["first"], graded["second"]
    assert len(second["stored"]) == len(VARIANTS), "every submission graded again after the store was deleted"
    assert sorted(second["executed"]) == sorted(v.name for v in VARIANTS), second["log"][-3000:]
    for variant in VARIANTS:
        a, b = first["results"][variant.name], second["results"][variant.name]
        assert _outcome(a) == _outcome(b), variant.name
        assert a["gradebook"] == b["gradebook"], variant.name
