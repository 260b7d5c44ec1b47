"""Exercise 2: model.fit with validation data, and the honesty of its history.

What the history *reports* is only trusted where the grader can verify it:
the threshold is judged on the grader's own evaluation of the trained
weights, the reported validation AUC must agree with that evaluation, and the
hidden test split shows whether the model generalises.
"""

import math
import re

import pytest

CELL = "test_fit"
ACCURACY_KEYS = ("accuracy", "binary_accuracy", "acc")
_AUC_KEY = re.compile(r"auc(_\d+)?")


def _history(evidence):
    hist = evidence.get("history")
    assert hist and hist["is_history"] and hist["history"] is not None, (
        "`history` is not the History that model.fit returns: write history = model.fit(...)"
        + (f" ({evidence['errors']['history']})" if "history" in evidence["errors"] else "")
    )
    return hist


def auc_key(values: dict, evidence: dict) -> str | None:
    """The history key of the compiled AUC metric: 'auc', Keras' 'auc_1' drift, or its own name
    (a string metric such as "AUC" is its own key)."""
    if "auc" in values:
        return "auc"
    compiled = (evidence.get("compile") or {}).get("metrics") or []
    names = [m.get("name") for m in compiled if m and m.get("class") == "AUC" and m.get("name")]
    names += [m["value"] for m in compiled if m and m.get("kind") == "str" and str(m.get("value")).lower() == "auc"]
    for key in [*names, *sorted(values)]:
        if key in values and (key in names or _AUC_KEY.fullmatch(key)):
            return key
    return None


def reported_val_auc(evidence, record_property):
    """(key, last value) of the validation AUC the history reports, or (None, None)."""
    hist = evidence.get("history") or {}
    values = hist.get("history") or {}
    key = auc_key(values, evidence)
    series = values.get(f"val_{key}") if key else None
    if not series:
        return None, None
    record_property("reported_val_auc", series[-1])
    return f"val_{key}", series[-1]


@pytest.mark.check(cell=CELL, points=1, name="history is a Keras History")
def test_history_type(evidence):
    hist = _history(evidence)
    assert hist["is_model_history"], (
        "`history` is a History, but not the one model.fit returned for `model`: "
        "keep what model.fit(...) returns, do not build or replace it yourself"
    )


@pytest.mark.check(cell=CELL, points=1, name="History has training and validation metrics")
def test_history_keys(evidence):
    values = _history(evidence)["history"]
    accuracy = next((k for k in ACCURACY_KEYS if k in values), "accuracy")
    auc = auc_key(values, evidence) or "auc"
    missing = [k for base in ("loss", accuracy, auc) for k in (base, f"val_{base}") if k not in values]
    assert not missing, (
        f"history.history lacks {missing} (its keys are {sorted(values)}): the validation keys need "
        "validation_data=val_ds, and 'accuracy' and 'auc' need the metrics \"accuracy\" and "
        'keras.metrics.AUC(name="auc"), spelled exactly so (a metric given as a string is its key)'
    )


@pytest.mark.check(cell=CELL, points=1, name="Trained as reported: full epochs over train_ds")
def test_epochs(evidence, context):
    """The history's epochs are full passes over train_ds, and all the training there was.

    Validation lists may be shorter than the epochs (``validation_freq``): validating less often
    does not change the training; the honesty check judges what validation reports.
    """
    hist = _history(evidence)
    epochs = len(hist["epoch"])
    assert epochs >= 1, "no epoch ran: set epochs to 1 or more"
    lengths = {k: len(v) for k, v in hist["history"].items()}
    assert all(n == epochs or (k.startswith("val_") and 1 <= n < epochs) for k, n in lengths.items()), (
        f"the history's lists do not match its {epochs} epoch(s): {lengths}"
    )
    expected, steps = context["training_steps"], hist.get("steps_per_epoch")
    assert steps is not None, (
        "the history does not record how many batches an epoch ran: it must be the History model.fit returned"
    )
    assert steps == expected, (
        f"each epoch ran {steps} batches, but one pass over train_ds is {expected} batches: "
        "train on train_ds itself (not on validation data, not on part of it)"
    )
    optimizer = (evidence.get("compile") or {}).get("optimizer") or {}
    updates = optimizer.get("iterations")
    assert updates is None or updates == steps * epochs, (
        f"the optimizer made {updates} weight updates, but the history accounts for {steps * epochs} "
        f"({epochs} epoch(s) of {steps} batches): train once, with the model.fit call whose History you keep"
    )


@pytest.mark.check(cell=CELL, points=2, name="Validation AUC reaches the threshold", needs=("weights",))
def test_val_auc_threshold(regraded, context, evidence, record_property):
    own = regraded["val_auc"]
    record_property("val_auc", own)
    _, reported = reported_val_auc(evidence, record_property)
    said = f" (your history reports {reported:.4f})" if reported is not None else ""
    assert own >= context["val_auc_threshold"], (
        f"the trained model's AUC on the validation messages is {own:.4f}{said}, below "
        f"{context['val_auc_threshold']}: check the optimizer, loss and learning rate, and train at least one epoch"
    )


@pytest.mark.check(
    cell=CELL, points=2, name="Reported validation AUC matches the grader's", needs=("history", "weights")
)
def test_reported_val_auc_is_honest(evidence, regraded, context, record_property):
    """The saved weights score what the history reports for the last epoch, or for an earlier epoch
    whose weights a callback restored (``EarlyStopping(restore_best_weights=True)``)."""
    key, reported = reported_val_auc(evidence, record_property)
    assert key is not None, (
        "the history reports no validation AUC, so the grader cannot confirm it: "
        'train with validation_data=val_ds and the metric keras.metrics.AUC(name="auc")'
    )
    own = regraded["val_auc"]
    series = evidence["history"]["history"][key]
    gaps = [abs(v - own) for v in series if isinstance(v, (int, float)) and math.isfinite(v)]
    gap = min(gaps) if gaps else math.inf
    record_property("honesty_gap", gap)
    earlier = " (nor does any earlier epoch)" if len(series) > 1 else ""
    epochs = len(evidence["history"]["epoch"])
    sparse = (
        (
            f"; validation ran on {len(series)} of {epochs} epochs, so the last epoch's weights were never "
            "validated: validate every epoch (leave out validation_freq)"
        )
        if len(series) < epochs
        else ""
    )
    assert gap <= context["honesty_tolerance"], (
        f"the history reports {key} {reported:.4f}{earlier}, but the trained model scores {own:.4f} "
        f"on the validation data: the history must come from training this model, unchanged{sparse}"
    )


@pytest.mark.check(cell=CELL, points=2, name="Trained model passes on hidden test data", needs=("weights",))
def test_hidden_auc(regraded, context, record_property):
    record_property("hidden_auc", regraded["hidden_auc"])
    assert regraded["hidden_auc"] >= context["hidden_auc_threshold"], (
        f"the trained model's AUC on the grader's hidden messages is {regraded['hidden_auc']:.4f}, "
        f"below {context['hidden_auc_threshold']}"
    )
