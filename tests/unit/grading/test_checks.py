"""Fast tests of the hidden checks on hand-made evidence (no TensorFlow, no notebook run).

Each check is a plain function of its fixtures, so it is called directly with
evidence shaped like what capture.py records; the collector is exercised by
running ``pytest autograder/checks`` in a subprocess on missing evidence.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import jsonschema
import nbformat
import pytest

from autograder.errors import EvidenceMissing
from autograder.grading.check_process import CHECKS_DIR, KIT_ROOT
from autograder.grading.checks import conftest as collector
from autograder.grading.evidence import PLOT_HISTORY, SCHEMA, load_evidence
from corpus import TEST_CELLS, check_modules, check_table
from evidence_samples import ADAM, AUC, BCE, CONTEXT, TRAIN_STEPS, figure, keras_object, reference_evidence
from kit_testing import ASSIGNMENT, REPO

_MODULES = check_modules()
compile_checks, fit_checks, plot_checks = (_MODULES[name] for name in ("test_compile", "test_fit", "test_plot"))

def changed(**paths) -> dict:
    """Reference evidence with dotted paths replaced, e.g. changed(**{"compile.loss": None})."""
    evidence = reference_evidence()
    for path, value in paths.items():
        *parents, last = path.split(".")
        target = evidence
        for key in parents:
            target = target[key]
        target[last] = value
    jsonschema.validate(evidence, SCHEMA)  # hand-made evidence stays within what the grader accepts
    return evidence


def failure(check, *args) -> str | None:
    """The check's message if it fails, None if it passes."""
    try:
        check(*args)
    except AssertionError as exc:
        return str(exc)
    return None


class Recorder(dict):
    def __call__(self, key, value):
        self[key] = value


REGRADED = {"val_auc": 0.9765, "hidden_auc": 0.9887}


def all_checks(evidence, regraded=REGRADED) -> dict[str, str | None]:
    rec = Recorder()
    return {
        "test_optimizer_is_adam": failure(compile_checks.test_optimizer_is_adam, evidence),
        "test_learning_rate": failure(compile_checks.test_learning_rate, evidence, CONTEXT),
        "test_loss_is_binary_crossentropy": failure(compile_checks.test_loss_is_binary_crossentropy, evidence),
        "test_auc_metric": failure(compile_checks.test_auc_metric, evidence),
        "test_accuracy_metric": failure(compile_checks.test_accuracy_metric, evidence),
        "test_history_type": failure(fit_checks.test_history_type, evidence),
        "test_history_keys": failure(fit_checks.test_history_keys, evidence),
        "test_epochs": failure(fit_checks.test_epochs, evidence, CONTEXT),
        "test_val_auc_threshold": failure(fit_checks.test_val_auc_threshold, regraded, CONTEXT, evidence, rec),
        "test_reported_val_auc_is_honest": failure(fit_checks.test_reported_val_auc_is_honest, evidence, regraded,
                                                   CONTEXT, rec),
        "test_hidden_auc": failure(fit_checks.test_hidden_auc, regraded, CONTEXT, rec),
        "test_all_metrics": failure(plot_checks.test_all_metrics, evidence),
        "test_one_figure_per_call": failure(plot_checks.test_one_figure_per_call, evidence),
        "test_line_labels": failure(plot_checks.test_line_labels, evidence),
        "test_data_matches_history": failure(plot_checks.test_data_matches_history, evidence, CONTEXT),
        "test_labels_and_legend": failure(plot_checks.test_labels_and_legend, evidence),
    }


def failed(results: dict) -> set[str]:
    return {check for check, message in results.items() if message is not None}


# --- the table of checks ------------------------------------------------------------

def test_unit_helper_covers_every_check():
    assert set(all_checks(reference_evidence())) == set(check_table())


def test_check_points_add_up_to_each_test_cells_points():
    nb = nbformat.read(REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    cell_points = {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"])
                   for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") in TEST_CELLS}
    sums = {cell: 0.0 for cell in TEST_CELLS}
    for check in check_table().values():
        sums[check["cell"]] += float(check["points"])
    assert sums == cell_points


def test_reference_evidence_passes_everything():
    assert failed(all_checks(reference_evidence())) == set()


# --- compile --------------------------------------------------------------------------

@pytest.mark.parametrize("optimizer, ok, shown", [
    ({**ADAM, "is_adam": True}, True, None),
    ({**keras_object("keras.src.optimizers.sgd.SGD", verified=False), "is_adam": False}, False, "SGD"),
    ({**keras_object("keras.src.optimizers.adamw.AdamW", verified=False), "is_adam": False}, False, "AdamW"),
    # an SGD subclass that calls itself keras.src.optimizers.adam.Adam: the guard found it is not Keras' Adam
    ({**keras_object("keras.src.optimizers.adam.Adam", verified=False), "is_adam": False}, False, "only claims"),
    ({**ADAM, "is_adam": False}, False, "Adam"),
    ({**ADAM, "verified": False, "is_adam": True}, False, "only claims"),
    ({"kind": "object", "class": "Adam", "is_adam": True}, False, "Adam"),  # no fully qualified name recorded
])
def test_optimizer_must_be_the_genuine_adam(optimizer, ok, shown):
    optimizer = {**optimizer, "learning_rate": 1e-3}
    message = failure(compile_checks.test_optimizer_is_adam, changed(**{"compile.optimizer": optimizer}))
    assert (message is None) == ok
    if not ok:
        assert shown in message and "not Keras' Adam" in message


@pytest.mark.parametrize("rate, ok", [(1e-3, True), (5e-4, True), (1e-2, True), (0.1, False), (1e-7, False)])
def test_learning_rate_range(rate, ok):
    evidence = changed(**{"compile.optimizer.learning_rate": rate})
    assert (failure(compile_checks.test_learning_rate, evidence, CONTEXT) is None) == ok


@pytest.mark.parametrize("loss, ok", [
    ({"kind": "str", "value": "binary_crossentropy"}, True),
    ({"kind": "str", "value": "BinaryCrossentropy"}, True),
    (keras_object(BCE, name="binary_crossentropy", from_logits=False), True),
    (keras_object("keras.src.losses.losses.binary_crossentropy", function="binary_crossentropy"), True),
    (keras_object(BCE, name="binary_crossentropy", from_logits=True), False),
    # named like the loss, but another class, or a class only claiming the name
    (keras_object("keras.src.losses.losses.MeanSquaredError", verified=False, name="binary_crossentropy"), False),
    (keras_object(BCE, verified=False, name="binary_crossentropy", from_logits=False), False),
    ({"kind": "object", "class": "BinaryCrossentropy", "name": "binary_crossentropy"}, False),
    ({"kind": "str", "value": "categorical_crossentropy"}, False),
    ({"kind": "str", "value": "mse"}, False),
    (None, False),
])
def test_loss_must_be_binary_crossentropy(loss, ok):
    message = failure(compile_checks.test_loss_is_binary_crossentropy, changed(**{"compile.loss": loss}))
    assert (message is None) == ok


def test_auc_metric_missing_or_misnamed():
    accuracy = {"kind": "str", "value": "accuracy"}
    missing = failure(compile_checks.test_auc_metric, changed(**{"compile.metrics": [accuracy]}))
    assert "no AUC metric" in missing
    misnamed = failure(compile_checks.test_auc_metric,
                       changed(**{"compile.metrics": [accuracy, {**AUC, "name": "roc_auc"}]}))
    assert "'roc_auc'" in misnamed


def test_auc_metric_must_be_keras_auc():
    accuracy = {"kind": "str", "value": "accuracy"}
    impostor = failure(compile_checks.test_auc_metric, changed(**{"compile.metrics": [
        accuracy, {**AUC, "verified": False}]}))
    assert "only claims" in impostor and "not Keras' AUC" in impostor
    unnamed = failure(compile_checks.test_auc_metric, changed(**{"compile.metrics": [
        accuracy, {"kind": "object", "class": "AUC", "name": "auc"}]}))
    assert "not Keras' AUC" in unnamed


@pytest.mark.parametrize("metric, ok", [
    ({"kind": "str", "value": "accuracy"}, True),
    ({"kind": "str", "value": "acc"}, True),
    (keras_object("keras.src.metrics.accuracy_metrics.BinaryAccuracy", name="binary_accuracy"), True),
    (keras_object("keras.src.metrics.accuracy_metrics.binary_accuracy", function="binary_accuracy"), True),
    (keras_object("keras.src.metrics.accuracy_metrics.BinaryAccuracy", verified=False, name="accuracy"), False),
    (keras_object("keras.src.metrics.confusion_metrics.Precision", name="accuracy"), False),
    ({"kind": "str", "value": "precision"}, False),
])
def test_accuracy_metric_by_name_or_genuine_object(metric, ok):
    evidence = changed(**{"compile.metrics": [metric, AUC]})
    assert (failure(compile_checks.test_accuracy_metric, evidence) is None) == ok


def test_uncompiled_model_fails_every_compile_check_with_one_clear_message():
    evidence = changed(compile={"compiled": False, "optimizer": None, "loss": None, "metrics": []})
    results = all_checks(evidence)
    compile_ids = [c for c, info in check_table().items() if info["cell"] == "test_compile"]
    assert failed(results) >= set(compile_ids)
    assert all(results[c].startswith("the model is not compiled") for c in compile_ids)


# --- fit --------------------------------------------------------------------------------

@pytest.mark.parametrize("keys, metrics, expected", [
    (["auc", "val_auc"], [], "auc"),
    (["auc_1", "val_auc_1"], [], "auc_1"),
    (["roc_auc", "val_roc_auc"], [{**AUC, "name": "roc_auc"}], "roc_auc"),
    (["roc_auc", "val_roc_auc"], [], None),
    (["loss", "val_loss"], [], None),
])
def test_auc_key_is_found_robustly(keys, metrics, expected):
    evidence = {"compile": {"metrics": metrics}}
    assert fit_checks.auc_key({k: [0.9] for k in keys}, evidence) == expected


def test_misnamed_auc_costs_only_the_naming_check():
    evidence = reference_evidence()
    evidence["compile"]["metrics"][1] = {**AUC, "name": "roc_auc"}
    values = evidence["history"]["history"]
    values["roc_auc"], values["val_roc_auc"] = values.pop("auc"), values.pop("val_auc")
    assert failed(all_checks(evidence)) == {"test_auc_metric"}


def test_missing_validation_data():
    values = {"loss": [0.2], "accuracy": [0.93], "auc": [0.95]}
    results = all_checks(changed(**{"history.history": values}))
    assert failed(results) == {"test_history_keys", "test_reported_val_auc_is_honest"}
    assert "val_loss" in results["test_history_keys"]


def test_history_that_is_not_from_fit():
    results = all_checks(changed(**{"history.is_model_history": False, "history.steps_per_epoch": None}))
    assert failed(results) == {"test_history_type", "test_epochs"}


@pytest.mark.parametrize("steps, epochs, ok", [
    (TRAIN_STEPS, [0], True), (TRAIN_STEPS, [0, 1], False),  # two epochs listed, one value per key
    (TRAIN_STEPS + 49, [0], False), (49, [0], False), (TRAIN_STEPS, [], False),
])
def test_epochs_must_be_full_passes_over_train_ds(steps, epochs, ok):
    evidence = changed(**{"history.steps_per_epoch": steps, "history.epoch": epochs})
    assert (failure(fit_checks.test_epochs, evidence, CONTEXT) is None) == ok


@pytest.mark.parametrize("updates, ok", [(TRAIN_STEPS, True), (TRAIN_STEPS + 49, False), (2 * TRAIN_STEPS, False)])
def test_training_outside_the_reported_history_is_caught(updates, ok):
    evidence = changed(**{"compile.optimizer.iterations": updates})
    message = failure(fit_checks.test_epochs, evidence, CONTEXT)
    assert (message is None) == ok
    if not ok:
        assert f"{updates} weight updates" in message


def test_threshold_judges_the_grader_s_evaluation_not_the_reported_number():
    evidence = reference_evidence()  # reports val_auc 0.9765
    assert failure(fit_checks.test_val_auc_threshold, {"val_auc": 0.5, "hidden_auc": 0.5}, CONTEXT, evidence,
                   Recorder()) is not None
    no_report = changed(**{"history.history": {"loss": [0.2]}})
    assert failure(fit_checks.test_val_auc_threshold, REGRADED, CONTEXT, no_report, Recorder()) is None


@pytest.mark.parametrize("reported, ok", [(0.9765, True), (0.9790, True), (0.999, False), (0.90, False),
                                          (math.nan, False)])
def test_honesty_compares_reported_and_regraded(reported, ok):
    evidence = changed(**{"history.history.val_auc": [reported]})
    rec = Recorder()
    message = failure(fit_checks.test_reported_val_auc_is_honest, evidence, REGRADED, CONTEXT, rec)
    assert (message is None) == ok
    assert rec["reported_val_auc"] == reported or math.isnan(reported)


@pytest.mark.parametrize("series, ok", [([0.95, 0.9765, 0.97], True),   # best epoch's weights restored
                                         ([0.95, 0.96, 0.97], False),     # no epoch scored like the weights
                                         ([math.nan, math.nan, math.nan], False)])
def test_honesty_accepts_the_weights_of_any_reported_epoch(series, ok):
    evidence = changed(**{"history.epoch": [0, 1, 2], "history.history.val_auc": series})
    rec = Recorder()
    message = failure(fit_checks.test_reported_val_auc_is_honest, evidence, REGRADED, CONTEXT, rec)
    assert (message is None) == ok, message
    assert ok or "nor does any earlier epoch" in message


def test_overwritten_weights_fail_threshold_honesty_and_hidden():
    results = all_checks(reference_evidence(), regraded={"val_auc": 0.5, "hidden_auc": 0.5})
    assert failed(results) == {"test_val_auc_threshold", "test_reported_val_auc_is_honest", "test_hidden_auc"}


# --- plot --------------------------------------------------------------------------------

def _plots(**figures_per_metric):
    return {m: {"error": None, "figures": figures_per_metric.get(m, [figure(m)])} for m in PLOT_HISTORY}


def test_plot_data_is_matched_by_value_not_label():
    evidence = changed(plots=_plots(**{m: [figure(m, labels=["training", "validation"])] for m in PLOT_HISTORY}))
    assert failed(all_checks(evidence)) == {"test_line_labels"}


def test_plot_without_validation_line():
    figures = {m: [figure(m, labels=[f"train_{m}"], ys=[PLOT_HISTORY[m][m]])] for m in PLOT_HISTORY}
    assert failed(all_checks(changed(plots=_plots(**figures)))) == {"test_line_labels", "test_data_matches_history"}


def test_plot_that_draws_nothing_fails_every_plot_check():
    evidence = changed(plots=_plots(**{m: [] for m in PLOT_HISTORY}))
    plot_ids = {c for c, info in check_table().items() if info["cell"] == "test_plot"}
    assert failed(all_checks(evidence)) == plot_ids


def test_plot_two_figures_and_missing_axis_labels():
    evidence = changed(plots=_plots(loss=[figure("loss"), figure("loss", xlabel="", legend=False)]))
    assert failed(all_checks(evidence)) == {"test_one_figure_per_call", "test_labels_and_legend"}


def test_plot_that_raises():
    evidence = changed(plots={m: {"error": "KeyError: 'val_auc'", "figures": []} for m in PLOT_HISTORY})
    results = all_checks(evidence)
    assert all("KeyError" in results[c] for c, info in check_table().items() if info["cell"] == "test_plot")


# --- evidence loading and the collector -------------------------------------------------

def test_malformed_or_missing_evidence_is_refused(tmp_path):
    with pytest.raises(EvidenceMissing, match="did not run to its end"):
        load_evidence(tmp_path)
    bad = reference_evidence()
    bad["history"]["history"]["val_auc"] = ["0.99"]  # strings where numbers belong
    (tmp_path / "evidence.json").write_text(json.dumps(bad))
    with pytest.raises(EvidenceMissing, match="malformed"):
        load_evidence(tmp_path)


def test_grader_errors_are_not_shown_to_students():
    message, detail = collector._message(KeyError("/tmp/spamkit-job-0/test.tsv"))
    assert "KeyError" in message and "spamkit" not in message and "test.tsv" in detail
    message, detail = collector._message(EvidenceMissing("the notebook did not run to its end"))
    assert message == "the notebook did not run to its end" and detail == ""


def test_collector_records_every_check_when_the_notebook_left_no_evidence(tmp_path):
    context = {"evidence_dir": str(tmp_path / "evidence"), "executed_notebook": str(tmp_path / "none.ipynb"),
               **CONTEXT}
    (tmp_path / "context.json").write_text(json.dumps(context))
    env = {**os.environ, "KIT_CHECK_CONTEXT": str(tmp_path / "context.json"),
           "KIT_CHECK_RESULTS": str(tmp_path / "results.json"), "PYTHONPATH": str(KIT_ROOT)}
    proc = subprocess.run([sys.executable, "-m", "pytest", str(CHECKS_DIR), "-q", "-p", "no:cacheprovider",
                           "--rootdir", str(CHECKS_DIR)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    records = json.loads((tmp_path / "results.json").read_text())
    table = check_table()
    assert sorted(r["id"] for r in records) == sorted(table), proc.stdout[-2000:]
    for record in records:
        assert record["cell"] == table[record["id"]]["cell"]
        assert record["points"] == float(table[record["id"]]["points"])
        assert not record["passed"] and record["score"] == 0.0
        assert record["message"] == "the notebook did not run to its end, so nothing could be checked"
        assert record["detail"] == ""
