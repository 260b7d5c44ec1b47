"""The result store: results under their key with the evidence beside them, summaries per student."""

from __future__ import annotations

import json

from autograder.course.store import ResultStore
from autograder.model import CheckResult, GradingResult, Status, Summary


def result(**changes) -> GradingResult:
    base = dict(
        status=Status.OK,
        message="",
        sandboxed=True,
        seconds=9.0,
        execute_seconds=8.0,
        check_seconds=1.0,
        peak_rss_mb=700.0,
        executed=None,
        checks=[CheckResult("test_a", "test_compile", "A", 1.0, True, 1.0, values={"val_auc": 0.97})],
    )
    return GradingResult(**{**base, **changes})


def test_store_keeps_evidence_beside_a_result(tmp_path):
    store = ResultStore(tmp_path)
    store.put("k1", result(evidence={"evidence.json": b"{}", "model.weights.h5": b"\x89HDF"}))
    store.put("k2", result(evidence={}))  # the run left no evidence
    store.put("k3", result())  # a result from before evidence was kept
    assert store.evidence("k1") == {"evidence.json": b"{}", "model.weights.h5": b"\x89HDF"}
    assert store.get("k1") == result()  # the evidence is not in the result's JSON
    record = json.loads((tmp_path / ".kit" / "store" / "k1.json").read_text())
    assert record["evidence_kept"] == ["evidence.json", "model.weights.h5"] and "evidence" not in record
    assert store.evidence("k2") == {} and store.evidence("k3") is None and store.evidence("nope") is None
    store.put("k1", result(checks=[], evidence={"evidence.json": b"[]"}))  # replaced as a whole
    assert store.evidence("k1") == {"evidence.json": b"[]"} and store.get("k1").checks == []
    store.discard("k1")
    assert store.get("k1") is None and not (tmp_path / ".kit" / "store" / "k1.evidence").exists()


def test_a_torn_or_foreign_result_is_graded_again(tmp_path):
    store = ResultStore(tmp_path)
    (tmp_path / ".kit" / "store").mkdir(parents=True)
    (tmp_path / ".kit" / "store" / "torn.json").write_text('{"status": "ok", "che')
    (tmp_path / ".kit" / "store" / "foreign.json").write_text('{"status": "no such status"}')
    assert store.get("torn") is None and store.get("foreign") is None


def test_summaries_round_trip(tmp_path):
    store = ResultStore(tmp_path)
    graded = Summary.of_result(result(), "key1", "digest1")
    store.write_summary("lab", "ann", graded)
    store.write_summary("lab", "ben", Summary.not_graded(Status.UNREADABLE, "corrupt", 20.0, ["a note"]))
    assert store.summaries("lab") == {"ann": graded, "ben": store.summary("lab", "ben")}
    assert store.summary("lab", "ben").status is Status.UNREADABLE and not store.summary("lab", "ben").graded
    assert store.summary("lab", "nobody") is None
