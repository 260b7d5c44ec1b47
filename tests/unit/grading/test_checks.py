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
import textwrap

import jsonschema
import nbformat
import pytest
from corpus import TEST_CELLS, check_modules, check_table
from evidence_samples import ADAM, AUC, BCE, CONTEXT, TRAIN_STEPS, figure, keras_object, reference_evidence
from kit_testing import ASSIGNMENT, REPO

from autograder.errors import EvidenceMissing
from autograder.grading.check_process import CHECKS_DIR, KIT_ROOT
from autograder.grading.checks import conftest as collector
from autograder.grading.evidence import PLOT_HISTORY, SCHEMA, load_evidence

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
        "test_reported_val_auc_is_honest": failure(
            fit_checks.test_reported_val_auc_is_honest, evidence, regraded, CONTEXT, rec
        ),
        "test_hidden_auc": failure(fit_checks.test_hidden_auc, regraded, CONTEXT, rec),
        "test_all_metrics": failure(plot_checks.test_all_metrics, evidence),
        "test_one_figure_per_call": failure(plot_checks.test_one_figure_per_call, evidence),
        "test_line_labels": failure(plot_checks.test_line_labels, evidence, CONTEXT),
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
    cell_points = {
        c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"]["points"])
        for c in nb.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") in TEST_CELLS
    }
    sums = {cell: 0.0 for cell in TEST_CELLS}
    for check in check_table().values():
        sums[check["cell"]] += float(check["points"])
    assert sums == cell_points


def test_reference_evidence_passes_everything():
    assert failed(all_checks(reference_evidence())) == set()


# --- compile --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "optimizer, ok, shown",
    [
        ({**ADAM, "is_adam": True}, True, None),
        ({**keras_object("keras.src.optimizers.sgd.SGD", verified=False), "is_adam": False}, False, "SGD"),
        ({**keras_object("keras.src.optimizers.adamw.AdamW", verified=False), "is_adam": False}, False, "AdamW"),
        # an SGD subclass that calls itself keras.src.optimizers.adam.Adam: the guard found it is not Keras' Adam
        ({**keras_object("keras.src.optimizers.adam.Adam", verified=False), "is_adam": False}, False, "only claims"),
        ({**ADAM, "is_adam": False}, False, "Adam"),
        ({**ADAM, "verified": False, "is_adam": True}, False, "only claims"),
        ({"kind": "object", "class": "Adam", "is_adam": True}, False, "Adam"),  # no fully qualified name recorded
    ],
)
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


@pytest.mark.parametrize(
    "loss, ok",
    [
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
    ],
)
def test_loss_must_be_binary_crossentropy(loss, ok):
    message = failure(compile_checks.test_loss_is_binary_crossentropy, changed(**{"compile.loss": loss}))
    assert (message is None) == ok


def test_auc_metric_missing_or_misnamed():
    accuracy = {"kind": "str", "value": "accuracy"}
    missing = failure(compile_checks.test_auc_metric, changed(**{"compile.metrics": [accuracy]}))
    assert "no AUC metric" in missing
    misnamed = failure(
        compile_checks.test_auc_metric, changed(**{"compile.metrics": [accuracy, {**AUC, "name": "roc_auc"}]})
    )
    assert "'roc_auc'" in misnamed


def test_auc_metric_must_be_keras_auc():
    accuracy = {"kind": "str", "value": "accuracy"}
    impostor = failure(
        compile_checks.test_auc_metric, changed(**{"compile.metrics": [accuracy, {**AUC, "verified": False}]})
    )
    assert "only claims" in impostor and "not Keras' AUC" in impostor
    unnamed = failure(
        compile_checks.test_auc_metric,
        changed(**{"compile.metrics": [accuracy, {"kind": "object", "class": "AUC", "name": "auc"}]}),
    )
    assert "not Keras' AUC" in unnamed


@pytest.mark.parametrize(
    "metric, ok",
    [
        ({"kind": "str", "value": "accuracy"}, True),
        ({"kind": "str", "value": "acc"}, True),
        (keras_object("keras.src.metrics.accuracy_metrics.BinaryAccuracy", name="binary_accuracy"), True),
        (keras_object("keras.src.metrics.accuracy_metrics.binary_accuracy", function="binary_accuracy"), True),
        (keras_object("keras.src.metrics.accuracy_metrics.BinaryAccuracy", verified=False, name="accuracy"), False),
        (keras_object("keras.src.metrics.confusion_metrics.Precision", name="accuracy"), False),
        ({"kind": "str", "value": "precision"}, False),
    ],
)
def test_accuracy_metric_by_name_or_genuine_object(metric, ok):
    evidence = changed(**{"compile.metrics": [metric, AUC]})
    assert (failure(compile_checks.test_accuracy_metric, evidence) is None) == ok


@pytest.mark.parametrize(
    "metric, ok, shown",
    [
        ({"kind": "str", "value": "auc"}, True, None),  # Keras resolves "auc" to AUC() and keys it auc
        ({**AUC, "curve": "ROC", "num_thresholds": 500}, True, None),
        ({"kind": "str", "value": "AUC"}, False, "history keys AUC and val_AUC"),
        ({**AUC, "curve": "PR"}, False, "ROC curve"),
        ({**AUC, "name": "AUC"}, False, "'AUC'"),
    ],
)
def test_auc_metric_spellings(metric, ok, shown):
    message = failure(
        compile_checks.test_auc_metric, changed(**{"compile.metrics": [{"kind": "str", "value": "accuracy"}, metric]})
    )
    assert (message is None) == ok, message
    assert ok or shown in message


def test_exact_match_accuracy_fails_with_what_to_write():
    exact = keras_object("keras.src.metrics.accuracy_metrics.Accuracy", name="accuracy")
    message = failure(compile_checks.test_accuracy_metric, changed(**{"compile.metrics": [exact, AUC]}))
    assert "reports 0" in message and '"accuracy"' in message


def test_auc_compiled_by_string_is_found_in_history():
    evidence = reference_evidence()
    evidence["compile"]["metrics"][1] = {"kind": "str", "value": "AUC"}
    values = evidence["history"]["history"]
    values["AUC"], values["val_AUC"] = values.pop("auc"), values.pop("val_auc")
    assert fit_checks.auc_key(values, evidence) == "AUC"
    assert failed(all_checks(evidence)) == {"test_auc_metric"}  # the naming costs its own check only


def test_history_keys_message_lists_the_keys():
    evidence = reference_evidence()
    values = evidence["history"]["history"]
    values["Accuracy"], values["val_Accuracy"] = values.pop("accuracy"), values.pop("val_accuracy")
    message = failure(fit_checks.test_history_keys, evidence)
    assert "'val_Accuracy'" in message and "spelled exactly so" in message


@pytest.mark.parametrize("val_length, ok", [(3, True), (1, True), (4, False), (0, False)])
def test_validation_freq_leaves_shorter_validation_lists(val_length, ok):
    """validation_freq=2 over 3 epochs validates once; training lists must still cover every epoch."""
    values = {
        "loss": [0.3, 0.2, 0.1],
        "accuracy": [0.9] * 3,
        "auc": [0.95] * 3,
        **{f"val_{k}": [v] * val_length for k, v in (("loss", 0.1), ("accuracy", 0.96), ("auc", 0.9765))},
    }
    evidence = changed(
        **{"history.epoch": [0, 1, 2], "history.history": values, "compile.optimizer.iterations": 3 * TRAIN_STEPS}
    )
    assert (failure(fit_checks.test_epochs, evidence, CONTEXT) is None) == ok


def test_honesty_message_names_validation_freq_when_the_last_epoch_was_not_validated():
    values = {
        "loss": [0.3, 0.2, 0.1],
        "accuracy": [0.9] * 3,
        "auc": [0.95] * 3,
        "val_loss": [0.1],
        "val_accuracy": [0.96],
        "val_auc": [0.95],
    }
    evidence = changed(**{"history.epoch": [0, 1, 2], "history.history": values})
    message = failure(fit_checks.test_reported_val_auc_is_honest, evidence, REGRADED, CONTEXT, Recorder())
    assert "validation ran on 1 of 3 epochs" in message and "validation_freq" in message


def test_uncompiled_model_fails_every_compile_check_with_one_clear_message():
    evidence = changed(compile={"compiled": False, "optimizer": None, "loss": None, "metrics": []})
    results = all_checks(evidence)
    compile_ids = [c for c, info in check_table().items() if info["cell"] == "test_compile"]
    assert failed(results) >= set(compile_ids)
    assert all(results[c].startswith("the model is not compiled") for c in compile_ids)


# --- fit --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys, metrics, expected",
    [
        (["auc", "val_auc"], [], "auc"),
        (["auc_1", "val_auc_1"], [], "auc_1"),
        (["roc_auc", "val_roc_auc"], [{**AUC, "name": "roc_auc"}], "roc_auc"),
        (["roc_auc", "val_roc_auc"], [], None),
        (["loss", "val_loss"], [], None),
    ],
)
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


@pytest.mark.parametrize(
    "steps, epochs, ok",
    [
        (TRAIN_STEPS, [0], True),
        (TRAIN_STEPS, [0, 1], False),  # two epochs listed, one value per key
        (TRAIN_STEPS + 49, [0], False),
        (49, [0], False),
        (TRAIN_STEPS, [], False),
    ],
)
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
    assert (
        failure(fit_checks.test_val_auc_threshold, {"val_auc": 0.5, "hidden_auc": 0.5}, CONTEXT, evidence, Recorder())
        is not None
    )
    no_report = changed(**{"history.history": {"loss": [0.2]}})
    assert failure(fit_checks.test_val_auc_threshold, REGRADED, CONTEXT, no_report, Recorder()) is None


@pytest.mark.parametrize(
    "reported, ok", [(0.9765, True), (0.9790, True), (0.999, False), (0.90, False), (math.nan, False)]
)
def test_honesty_compares_reported_and_regraded(reported, ok):
    evidence = changed(**{"history.history.val_auc": [reported]})
    rec = Recorder()
    message = failure(fit_checks.test_reported_val_auc_is_honest, evidence, REGRADED, CONTEXT, rec)
    assert (message is None) == ok
    assert rec["reported_val_auc"] == reported or math.isnan(reported)


@pytest.mark.parametrize(
    "series, ok",
    [
        ([0.95, 0.9765, 0.97], True),  # best epoch's weights restored
        ([0.95, 0.96, 0.97], False),  # no epoch scored like the weights
        ([math.nan, math.nan, math.nan], False),
    ],
)
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
    context = {"evidence_dir": str(tmp_path / "evidence"), "executed_notebook": str(tmp_path / "none.ipynb"), **CONTEXT}
    (tmp_path / "context.json").write_text(json.dumps(context))
    env = {
        **os.environ,
        "KIT_CHECK_CONTEXT": str(tmp_path / "context.json"),
        "KIT_CHECK_RESULTS": str(tmp_path / "results.json"),
        "PYTHONPATH": str(KIT_ROOT),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(CHECKS_DIR), "-q", "-p", "no:cacheprovider", "--rootdir", str(CHECKS_DIR)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    records = json.loads((tmp_path / "results.json").read_text())
    table = check_table()
    assert sorted(r["id"] for r in records) == sorted(table), proc.stdout[-2000:]
    for record in records:
        assert record["cell"] == table[record["id"]]["cell"]
        assert record["points"] == float(table[record["id"]]["points"])
        assert not record["passed"] and record["score"] == 0.0
        assert record["message"] == "the notebook did not run to its end, so nothing could be checked"
        assert record["detail"] == ""


# --- plot_history variants, drawn for real -------------------------------------------------
# Each variant's plot_history runs through capture.py's _plot_calls in this process (matplotlib Agg,
# a plain class for the History, no TensorFlow), as the capture cell runs it in the student's kernel;
# the real plot checks then judge the recorded figures.

PLOT_IDS = (
    "test_all_metrics",
    "test_one_figure_per_call",
    "test_line_labels",
    "test_data_matches_history",
    "test_labels_and_legend",
)


class _FakeHistory:
    """Anything with .history / .epoch / .params will do for plot_history."""


def plot_source(body: str) -> str:
    return 'def plot_history(history, metric="accuracy"):\n' + textwrap.indent(textwrap.dedent(body).strip(), "    ")


def subplots_plot(
    x="epochs_run, ",
    train='f"train_{metric}"',
    val='f"val_{metric}"',
    xlabel='"Epoch"',
    ylabel="metric",
    legend="ax.legend()",
    end="plt.show()",
    y="history.history[{key}]",
) -> str:
    """The reference plot_history with one part changed."""
    train_y, val_y = y.format(key="metric"), y.format(key='f"val_{metric}"')
    return plot_source(f"""
        epochs_run = range(1, len(history.history[metric]) + 1)
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot({x}{train_y}, marker="o", label={train})
        ax.plot({x}{val_y}, marker="o", label={val})
        ax.set_xlabel({xlabel})
        ax.set_ylabel({ylabel})
        {legend}
        ax.grid(True)
        {end}
        """)


def plotted(source: str) -> dict:
    """The plot evidence capture.py records for this plot_history."""
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from autograder.sandbox.payload.capture import _plot_calls

    matplotlib.use("agg")
    namespace = {"plt": plt, "np": np, "pd": pd}
    exec(compile(source, "<plot_history>", "exec"), namespace)
    return _plot_calls(namespace["plot_history"], PLOT_HISTORY, _FakeHistory, plt)


def plot_results(source: str) -> dict[str, str | None]:
    evidence = changed(plots=plotted(source))  # validated against the evidence schema
    return {check: message for check, message in all_checks(evidence).items() if check in PLOT_IDS}


VALID_PLOTS = {
    "reference": subplots_plot(),
    **{
        f"xlabel {label!r}": subplots_plot(xlabel=repr(label))
        for label in (
            "Epochs",
            "epoch",
            "Epoch #",
            "Training epoch",
            "epochs (n)",
            "EPOCHS",
            "Epoch number",
            "num_epochs",
        )
    },
    "x from 0 (no x given)": subplots_plot(x=""),
    "x = history.epoch": subplots_plot(x="history.epoch, "),
    "x = range(len(...))": subplots_plot(x="range(len(history.history[metric])), "),
    "x = np.arange from 1": subplots_plot(x="np.arange(1, len(history.history[metric]) + 1), "),
    "x from history.params": subplots_plot(x='range(1, history.params["epochs"] + 1), '),
    "x as category names": subplots_plot(x='[f"epoch {e + 1}" for e in history.epoch], '),
    "float32 values": subplots_plot(y='np.asarray(history.history[{key}], dtype="float32")'),
    "Training/Validation <metric>": subplots_plot(train='f"Training {metric}"', val='f"Validation {metric}"'),
    "Train/Val. <METRIC>": subplots_plot(train='f"Train {metric.upper()}"', val='f"Val. {metric.upper()}"'),
    "<metric> (train)/(validation)": subplots_plot(train='f"{metric} (train)"', val='f"{metric} (validation)"'),
    "history keys as labels": subplots_plot(train="metric", val='"val_" + metric'),
    "valid_<metric>": subplots_plot(val='f"valid_{metric}"'),
    "ylabel capitalized": subplots_plot(ylabel="metric.capitalize()"),
    "ylabel in words": subplots_plot(
        ylabel='{"accuracy": "Accuracy (%)", "auc": "Area under the ROC curve", "loss": "Binary cross-entropy"}[metric]'
    ),
    "plt.legend()": subplots_plot(legend='plt.legend(loc="lower right")'),
    "fig.legend()": subplots_plot(legend="fig.legend()"),
    "no plt.show()": subplots_plot(end=""),
    "returns the figure": subplots_plot(end="return fig"),
    "plt.show() then plt.close()": subplots_plot(end="plt.show(); plt.close(fig)"),
    "plt.close() without show": subplots_plot(end="plt.close(fig)"),
    "pyplot state, plt.figure(), no show": plot_source("""
        plt.figure(figsize=(6, 4))
        plt.plot(history.history[metric], "o-", label=f"train_{metric}")
        plt.plot(history.history["val_" + metric], "o-", label=f"val_{metric}")
        plt.xlabel("Epochs"); plt.ylabel(metric); plt.legend(); plt.grid(True)
        """),
    "pyplot state, no plt.figure(), plt.show()": plot_source("""
        plt.plot(history.epoch, history.history[metric], label=f"train_{metric}")
        plt.plot(history.epoch, history.history["val_" + metric], label=f"val_{metric}")
        plt.xlabel("epoch"); plt.ylabel(metric.upper()); plt.legend(); plt.show()
        """),
    "pandas after plt.figure() (an empty figure)": plot_source("""
        plt.figure(figsize=(6, 4))
        pd.DataFrame(history.history)[[metric, "val_" + metric]].plot(marker="o")
        plt.xlabel("Epochs"); plt.ylabel(metric); plt.grid(True)
        """),
    "pandas on ax": plot_source("""
        fig, ax = plt.subplots()
        pd.DataFrame(history.history)[[metric, f"val_{metric}"]].plot(ax=ax, marker="o", grid=True)
        ax.set(xlabel="Epoch", ylabel=metric)
        plt.show()
        """),
    "pandas, renamed columns": plot_source("""
        frame = pd.DataFrame(history.history).rename(columns={metric: "train_" + metric})
        ax = frame[["train_" + metric, "val_" + metric]].plot(marker="o", xlabel="Training epoch", ylabel=metric)
        """),
    "pandas Series after plt.figure()": plot_source("""
        plt.figure()
        pd.Series(history.history[metric]).plot(label="Training " + metric)
        pd.Series(history.history["val_" + metric]).plot(label="Validation " + metric)
        plt.xlabel("Epoch"); plt.ylabel(metric); plt.legend()
        """),
    "ax.legend([...]) names the curves": plot_source("""
        fig, ax = plt.subplots()
        ax.plot(history.history[metric], marker="o")
        ax.plot(history.history[f"val_{metric}"], marker="o")
        ax.legend([f"train_{metric}", f"val_{metric}"])
        ax.set_xlabel("Epoch"); ax.set_ylabel(metric)
        """),
    "plt.legend([...]) in pyplot state": plot_source("""
        plt.figure()
        plt.plot(history.history[metric])
        plt.plot(history.history["val_" + metric])
        plt.legend(["Training " + metric, "Validation " + metric])
        plt.xlabel("Epochs"); plt.ylabel(metric); plt.show()
        """),
    "one plt.plot call, two curves, plt.legend([...])": plot_source("""
        plt.figure()
        x = range(1, len(history.history[metric]) + 1)
        plt.plot(x, history.history[metric], "o-", x, history.history["val_" + metric], "s--")
        plt.legend(["train", "val"], title=metric)  # names without the metric: see the wrong variants
        plt.legend([f"train {metric}", f"val {metric}"])
        plt.xlabel("Epoch"); plt.ylabel(metric)
        """),
    "legend from handles, in another order": plot_source("""
        fig, ax = plt.subplots()
        train, = ax.plot(history.history[metric], color="C0")
        val, = ax.plot(history.history[f"val_{metric}"], color="C0", linestyle="--")
        ax.legend([val, train], [f"val_{metric}", f"train_{metric}"])
        ax.set_xlabel("Epoch"); ax.set_ylabel(metric)
        """),
    "twin axes, figure legend": plot_source("""
        fig, ax = plt.subplots()
        ax.plot(history.history[metric], label=f"train_{metric}")
        twin = ax.twinx()
        twin.plot(history.history[f"val_{metric}"], color="C1", label=f"val_{metric}")
        ax.set_xlabel("Epoch"); ax.set_ylabel(metric)
        fig.legend()
        """),
}

# Wrong variants: the checks each must fail (the others pass), and a word its message must contain.
WRONG_PLOTS = {
    **{
        f"xlabel {label!r}": (subplots_plot(xlabel=repr(label)), {"test_labels_and_legend": "Epoch"})
        for label in ("Step", "Time", "", "Batch", "Iteration")
    },
    "swapped names": (subplots_plot(train='f"val_{metric}"', val='f"train_{metric}"'), {"test_line_labels": "swapped"}),
    "swapped names in ax.legend([...])": (
        subplots_plot(train="None", val="None", legend='ax.legend([f"val_{metric}", f"train_{metric}"])'),
        {"test_line_labels": "swapped"},
    ),
    "names without the metric": (
        subplots_plot(train='"training"', val='"validation"'),
        {"test_line_labels": "train_accuracy"},
    ),
    "names without the split": (subplots_plot(train="metric", val="metric"), {"test_line_labels": "val_"}),
    "validation called test": (subplots_plot(val='f"test_{metric}"'), {"test_line_labels": "test set"}),
    "names hard-coded for accuracy": (
        subplots_plot(train='"train_accuracy"', val='"val_accuracy"'),
        {"test_line_labels": "val_auc"},
    ),
    "only the training curve": (
        plot_source("""
        fig, ax = plt.subplots()
        ax.plot(history.history[metric], label=f"train_{metric}")
        ax.set_xlabel("Epoch"); ax.set_ylabel(metric); ax.legend()
        """),
        {"test_line_labels": "val_", "test_data_matches_history": "val_"},
    ),
    "training values twice": (subplots_plot(y="history.history[metric]"), {"test_data_matches_history": "val_"}),
    "values in percent": (
        subplots_plot(y="[100 * v for v in history.history[{key}]]"),
        {"test_data_matches_history": "no line shows"},
    ),
    "no legend": (subplots_plot(legend=""), {"test_labels_and_legend": "legend"}),
    "title instead of y label": (
        subplots_plot(ylabel='""', legend="ax.legend(); ax.set_title(metric)"),
        {"test_labels_and_legend": "title does not label"},
    ),
    "y label hard-coded": (subplots_plot(ylabel='"Accuracy"'), {"test_labels_and_legend": "y axis"}),
    "pyplot state, no new figure, no show: plots pile up": (
        plot_source("""
        plt.plot(history.history[metric], label=f"train_{metric}")
        plt.plot(history.history["val_" + metric], label=f"val_{metric}")
        plt.xlabel("Epoch"); plt.ylabel(metric); plt.legend()
        """),
        {"test_one_figure_per_call": "previous call"},
    ),
    "plt.clf() and no show: each plot replaces the last": (
        plot_source("""
        plt.clf()
        plt.plot(history.history[metric], label=f"train_{metric}")
        plt.plot(history.history["val_" + metric], label=f"val_{metric}")
        plt.xlabel("Epoch"); plt.ylabel(metric); plt.legend()
        """),
        {"test_one_figure_per_call": "previous call"},
    ),
    "plt.subplots() then pandas without ax: an empty extra plot": (
        plot_source("""
        fig, ax = plt.subplots()
        pd.DataFrame(history.history)[[metric, "val_" + metric]].plot()
        plt.xlabel("Epoch"); plt.ylabel(metric)
        """),
        {"test_one_figure_per_call": "ax=ax"},
    ),
    "one figure per curve": (
        plot_source("""
        for key in (metric, "val_" + metric):
            fig, ax = plt.subplots()
            ax.plot(history.history[key], label=key)
            ax.set_xlabel("Epoch"); ax.set_ylabel(metric); ax.legend()
        """),
        {
            "test_one_figure_per_call": "2 figures",
            "test_line_labels": "named",
            "test_data_matches_history": "no line shows",
        },
    ),
    "scatter points, no curves": (
        plot_source("""
        fig, ax = plt.subplots()
        ax.scatter(history.epoch, history.history[metric], label=f"train_{metric}")
        ax.scatter(history.epoch, history.history["val_" + metric], label=f"val_{metric}")
        ax.set_xlabel("Epoch"); ax.set_ylabel(metric); ax.legend()
        """),
        {check: "ax.plot" for check in PLOT_IDS if check != "test_one_figure_per_call"},
    ),
    "raises": (
        plot_source('fig, ax = plt.subplots()\nax.plot(history.history["val_" + metric + "_"])'),
        {check: "KeyError" for check in PLOT_IDS},
    ),
}


@pytest.mark.parametrize("source", VALID_PLOTS.values(), ids=VALID_PLOTS.keys())
def test_valid_plot_variants_pass_every_plot_check(source):
    results = plot_results(source)
    assert {check: message for check, message in results.items() if message} == {}


@pytest.mark.parametrize("source, fails", WRONG_PLOTS.values(), ids=WRONG_PLOTS.keys())
def test_wrong_plot_variants_fail_exactly_their_checks(source, fails):
    results = plot_results(source)
    assert {check for check, message in results.items() if message} == set(fails), results
    for check, word in fails.items():
        assert word in results[check], results[check]


def test_a_curve_named_only_in_the_legend_is_known_by_that_name():
    lines = plotted(VALID_PLOTS["ax.legend([...]) names the curves"])["auc"]["figures"][0]["axes"][0]["lines"]
    assert [(line["label"], line["legend"]) for line in lines] == [("_child0", "train_auc"), ("_child1", "val_auc")]
    assert [plot_checks.curve_name(line) for line in lines] == ["train_auc", "val_auc"]


def test_figures_left_open_by_an_earlier_call_are_not_counted_again():
    calls = plotted(VALID_PLOTS["no plt.show()"])
    assert [len(call["figures"]) for call in calls.values()] == [1, 1, 1]
    assert not any(fig["reused"] for call in calls.values() for fig in call["figures"])
    piled = plotted(WRONG_PLOTS["pyplot state, no new figure, no show: plots pile up"][0])
    assert [[fig["reused"] for fig in call["figures"]] for call in piled.values()] == [[False], [True], [True]]


@pytest.mark.parametrize(
    "text, metric, split",
    [
        ("train_auc", "auc", "train"),
        ("val_auc", "auc", "val"),
        ("Training AUC", "auc", "train"),
        ("Validation accuracy", "accuracy", "val"),
        ("val. acc", "accuracy", "val"),
        ("auc", "auc", "train"),
        ("loss", "loss", "train"),
        ("val_loss", "loss", "val"),
        ("Training cross-entropy", "loss", "train"),
        ("training", "auc", None),
        ("validation", "auc", None),
        ("train vs val auc", "auc", None),
        ("test_auc", "auc", None),
        ("train_accuracy", "auc", None),
        ("_child0", "auc", None),
        ("", "loss", None),
    ],
)
def test_curve_names(text, metric, split):
    assert plot_checks.split_named(text, metric) == split


@pytest.mark.parametrize(
    "label, ok",
    [
        ("Epoch", True),
        ("Epochs", True),
        ("epoch", True),
        ("Epoch #", True),
        ("Training epoch", True),
        ("epochs (n)", True),
        ("num_epochs", True),
        ("EPOCH", True),
        ("Step", False),
        ("Time", False),
        ("", False),
        ("Batch", False),
        ("Iteration", False),
        ("Epochen", False),
    ],
)
def test_x_label_names_epochs(label, ok):
    assert plot_checks.names_epochs(label) == ok


def public_self_check() -> str:
    """The test_plot cell students run (the release keeps it as it is in the source)."""
    nb = nbformat.read(REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_plot")


def run_public_self_check(plot_source: str) -> str:
    """The self-check's verdict on this plot_history: "" when it passes, else its message."""
    import types

    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    keras_stub = types.SimpleNamespace(callbacks=types.SimpleNamespace(History=_FakeHistory))
    namespace = {"plt": plt, "np": np, "pd": pd, "keras": keras_stub}
    exec(compile(plot_source, "<plot_history>", "exec"), namespace)
    try:
        exec(compile(public_self_check(), "<test_plot>", "exec"), namespace)
    except AssertionError as exc:
        return str(exc) or "failed"
    finally:
        plt.close("all")
    return ""


@pytest.mark.parametrize("source", VALID_PLOTS.values(), ids=VALID_PLOTS.keys())
def test_public_self_check_passes_every_plot_the_hidden_checks_accept(source, capsys):
    assert run_public_self_check(source) == ""
    assert "Exercise 3:" in capsys.readouterr().out


@pytest.mark.parametrize("variant", ["xlabel 'Step'", "only the training curve", "no legend", "values in percent"])
def test_public_self_check_still_catches_plain_mistakes(variant):
    assert run_public_self_check(WRONG_PLOTS[variant][0])
