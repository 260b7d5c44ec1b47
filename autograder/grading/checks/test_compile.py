"""Exercise 1: model.compile with Adam, binary cross-entropy, accuracy and AUC.

Objects are judged by their fully qualified class (or function) name *and*
``verified``: capture.py's guard found the object to be the genuine Keras one
it kept before any student code ran, so a class that only calls itself Adam,
or a Keras name rebound to another class, does not pass (see capture.py).

Strings are judged by what Keras 3 makes of them (``keras.losses.get``,
``keras.metrics.get`` and compile's own "accuracy"): every spelling Keras
resolves to the right object passes; the optimizer is judged on the object
compile built, so "adam", "Adam" and ``keras.optimizers.Adam(...)`` all pass.
A metric given as a string gets that string as its history key.
"""

import pytest

from autograder.internals.keras import qualified  # the names the genuine Keras objects report (keras.src...)

CELL = "test_compile"
BCE_NAMES = {"binary_crossentropy", "bce", "binarycrossentropy"}  # compared in lower case: "BCE", "BinaryCrossentropy"
ACCURACY_NAMES = {"accuracy", "acc", "binary_accuracy", "binaryaccuracy"}
AUC_NAME = "auc"  # the string Keras resolves to AUC() and uses as the history key; "AUC" gives keys AUC / val_AUC
ADAM = qualified("Adam")
BCE_PATHS = {qualified("BinaryCrossentropy"), qualified("binary_crossentropy")}
AUC_PATHS = {qualified("AUC")}
ACCURACY_PATHS = {qualified("BinaryAccuracy"), qualified("binary_accuracy")}
# Keras' Accuracy counts exact equality of prediction and label: on sigmoid probabilities it reports 0.
EXACT_ACCURACY_PATHS = {qualified("Accuracy"), qualified("accuracy")}


def _compiled(evidence):
    compiled = evidence.get("compile")
    assert compiled and compiled["compiled"], (
        "the model is not compiled: call model.compile(optimizer=..., loss=..., metrics=...)"
        + (f" ({evidence['errors']['compile']})" if "compile" in evidence["errors"] else "")
    )
    return compiled


def _genuine(described, paths) -> bool:
    """A passed object that is one of the Keras objects at ``paths`` (not just named like one)."""
    return bool(described) and described.get("path") in paths and described.get("verified") is True


def _accepted(described, names, paths) -> bool:
    """A string Keras resolves by name, or a genuine Keras object."""
    if not described:
        return False
    if described.get("kind") == "str":
        return str(described.get("value")).lower() in names
    return _genuine(described, paths)


def _what(described, paths=()) -> str:
    """How a check names a passed object to the student."""
    if described.get("kind") == "str":
        return repr(described.get("value"))
    if described.get("path") in paths and not described.get("verified"):
        return f"a class {described.get('class')} that only claims to be {described.get('path')}"
    return f"{described.get('class')} ({described.get('path') or described.get('module')})"


@pytest.mark.check(cell=CELL, points=1, name="Optimizer is Adam")
def test_optimizer_is_adam(evidence):
    optimizer = _compiled(evidence)["optimizer"]
    assert optimizer, "no optimizer was compiled: use optimizer=keras.optimizers.Adam(learning_rate=learning_rate)"
    assert optimizer.get("is_adam") is True and _genuine(optimizer, {ADAM}), (
        f"the optimizer is {_what(optimizer, {ADAM})}, not Keras' Adam: "
        "use optimizer=keras.optimizers.Adam(learning_rate=learning_rate)"
    )


@pytest.mark.check(cell=CELL, points=1, name="Learning rate is set and sane")
def test_learning_rate(evidence, context):
    optimizer = _compiled(evidence)["optimizer"]
    assert optimizer, "no optimizer was compiled"
    low, high = context["min_learning_rate"], context["max_learning_rate"]
    rate = optimizer["learning_rate"]
    assert low <= rate <= high, (
        f"the learning rate is {rate:g}; keep it between {low:g} and {high:g} (1e-3 is a good start)"
    )


@pytest.mark.check(cell=CELL, points=1, name="Loss is binary cross-entropy")
def test_loss_is_binary_crossentropy(evidence):
    loss = _compiled(evidence)["loss"]
    assert loss is not None, 'no loss was compiled: use loss="binary_crossentropy"'
    assert _accepted(loss, BCE_NAMES, BCE_PATHS), (
        f"the loss is {_what(loss, BCE_PATHS)}; a single sigmoid "
        'output for two classes needs loss="binary_crossentropy" (or keras.losses.BinaryCrossentropy())'
    )
    assert not loss.get("from_logits"), (
        "BinaryCrossentropy(from_logits=True) expects raw scores, but the model already ends in a sigmoid"
    )


@pytest.mark.check(cell=CELL, points=1, name="AUC metric named 'auc'")
def test_auc_metric(evidence):
    """keras.metrics.AUC(name="auc") (any further ROC settings), or the string "auc"."""
    metrics = _compiled(evidence)["metrics"]
    strings = [m for m in metrics if m and m.get("kind") == "str" and str(m.get("value")).lower() == AUC_NAME]
    if any(m["value"] == AUC_NAME for m in strings):
        return
    aucs = [m for m in metrics if m and m.get("class") == "AUC"]
    assert aucs or strings, 'no AUC metric is compiled: add keras.metrics.AUC(name="auc") to metrics'
    assert not strings or aucs, (
        f"the metric {strings[0]['value']!r} makes the history keys {strings[0]['value']} and "
        f'val_{strings[0]["value"]}: use keras.metrics.AUC(name="auc") (or the string "auc")'
    )
    genuine = [m for m in aucs if _genuine(m, AUC_PATHS)]
    assert genuine, (
        f'the AUC metric is {_what(aucs[0], AUC_PATHS)}, not Keras\' AUC: add keras.metrics.AUC(name="auc") to metrics'
    )
    roc = [m for m in genuine if str(m.get("curve", "ROC")).upper() == "ROC"]
    assert roc, (
        f"the AUC metric is the area under the {genuine[0].get('curve')} curve; the lab's AUC is the area under "
        'the ROC curve: leave out curve=... (keras.metrics.AUC(name="auc"))'
    )
    assert any(m.get("name") == AUC_NAME for m in roc), (
        f'the AUC metric is named {roc[0].get("name")!r}; name it "auc" so that history has auc and val_auc'
    )


@pytest.mark.check(cell=CELL, points=1, name="Accuracy metric")
def test_accuracy_metric(evidence):
    metrics = _compiled(evidence)["metrics"]
    exact = [m for m in metrics if _genuine(m, EXACT_ACCURACY_PATHS)]
    assert any(_accepted(m, ACCURACY_NAMES, ACCURACY_PATHS) for m in metrics), (
        "keras.metrics.Accuracy() counts predictions exactly equal to the label, so on the sigmoid's "
        'probabilities it reports 0: use the string "accuracy" (or keras.metrics.BinaryAccuracy())'
        if exact
        else 'accuracy is not among the metrics: use metrics=["accuracy", keras.metrics.AUC(name="auc")]'
    )
