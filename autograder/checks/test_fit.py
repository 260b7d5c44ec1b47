"""Exercise 2: model.fit with validation data, and the honesty of its history."""

import math

import pytest

CELL = "test_fit"
KEYS = ("loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc")


def _history(evidence):
    hist = evidence.get("history")
    assert hist and hist["is_history"] and hist["history"] is not None, (
        "`history` is not the History that model.fit returns: write history = model.fit(...)"
        + (f" ({evidence['errors']['history']})" if "history" in evidence["errors"] else "")
    )
    return hist


@pytest.mark.check(cell=CELL, points=1, name="history is a Keras History")
def test_history_type(evidence):
    hist = _history(evidence)
    assert hist["is_model_history"], "`history` is a History, but not the one model.fit returned for `model`"


@pytest.mark.check(cell=CELL, points=1, name="History has training and validation metrics")
def test_history_keys(evidence):
    values = _history(evidence)["history"]
    missing = [k for k in KEYS if k not in values]
    assert not missing, (
        f"history.history lacks {missing}; validation keys need validation_data=val_ds, "
        "'auc' needs the metric AUC(name=\"auc\")"
    )


@pytest.mark.check(cell=CELL, points=1, name="At least one epoch trained")
def test_epochs(evidence):
    hist = _history(evidence)
    epochs = len(hist["epoch"])
    assert epochs >= 1, "no epoch ran: set epochs to 1 or more"
    lengths = {k: len(v) for k, v in hist["history"].items()}
    assert all(n == epochs for n in lengths.values()), f"the history's lists do not match its {epochs} epoch(s): {lengths}"


@pytest.mark.check(cell=CELL, points=2, name="Validation AUC reaches the threshold")
def test_val_auc_threshold(evidence, context):
    values = _history(evidence)["history"].get("val_auc")
    assert values, "there is no val_auc in the history (validation data and AUC(name=\"auc\") are needed)"
    last = values[-1]
    assert math.isfinite(last) and last >= context["val_auc_threshold"], (
        f"the last val_auc is {last:.4f}, below {context['val_auc_threshold']}: check the compile settings "
        "and the learning rate"
    )


@pytest.mark.check(cell=CELL, points=2, name="Reported validation AUC matches the grader's")
def test_reported_val_auc_is_honest(evidence, regraded, context):
    values = _history(evidence)["history"].get("val_auc")
    assert values, "there is no val_auc in the history to compare"
    gap = abs(values[-1] - regraded["val_auc"])
    assert gap <= context["honesty_tolerance"], (
        f"the history reports val_auc {values[-1]:.4f}, but the trained model scores {regraded['val_auc']:.4f} "
        "on the validation data: the history must come from training this model"
    )


@pytest.mark.check(cell=CELL, points=2, name="Trained model passes on hidden test data")
def test_hidden_auc(regraded, context):
    assert regraded["hidden_auc"] >= context["hidden_auc_threshold"], (
        f"the trained model's AUC on the grader's hidden messages is {regraded['hidden_auc']:.4f}, "
        f"below {context['hidden_auc_threshold']}"
    )
