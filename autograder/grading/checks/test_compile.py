"""Exercise 1: model.compile with Adam, binary cross-entropy, accuracy and AUC.

Objects are judged by their fully qualified class (or function) name *and*
``verified``: capture.py's guard found the object to be the genuine Keras one
it kept before any student code ran, so a class that only calls itself Adam,
or a Keras name rebound to another class, does not pass (see capture.py).
"""

import pytest

CELL = "test_compile"
BCE_NAMES = {"binary_crossentropy", "bce", "binarycrossentropy"}
ACCURACY_NAMES = {"accuracy", "acc", "binary_accuracy", "binaryaccuracy"}
ADAM = "keras.src.optimizers.adam.Adam"
BCE_PATHS = {"keras.src.losses.losses.BinaryCrossentropy", "keras.src.losses.losses.binary_crossentropy"}
AUC_PATHS = {"keras.src.metrics.confusion_metrics.AUC"}
ACCURACY_PATHS = {"keras.src.metrics.accuracy_metrics.BinaryAccuracy", "keras.src.metrics.accuracy_metrics.Accuracy",
                  "keras.src.metrics.accuracy_metrics.binary_accuracy", "keras.src.metrics.accuracy_metrics.accuracy"}


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
    assert loss is not None, "no loss was compiled: use loss=\"binary_crossentropy\""
    assert _accepted(loss, BCE_NAMES, BCE_PATHS), (
        f"the loss is {_what(loss, BCE_PATHS)}; a single sigmoid "
        "output for two classes needs loss=\"binary_crossentropy\" (or keras.losses.BinaryCrossentropy())"
    )
    assert not loss.get("from_logits"), (
        "BinaryCrossentropy(from_logits=True) expects raw scores, but the model already ends in a sigmoid"
    )


@pytest.mark.check(cell=CELL, points=1, name="AUC metric named 'auc'")
def test_auc_metric(evidence):
    metrics = _compiled(evidence)["metrics"]
    aucs = [m for m in metrics if m and m.get("class") == "AUC"]
    assert aucs, "no AUC metric is compiled: add keras.metrics.AUC(name=\"auc\") to metrics"
    genuine = [m for m in aucs if _genuine(m, AUC_PATHS)]
    assert genuine, (
        f"the AUC metric is {_what(aucs[0], AUC_PATHS)}, not Keras' AUC: "
        "add keras.metrics.AUC(name=\"auc\") to metrics"
    )
    aucs = genuine
    assert any(m.get("name") == "auc" for m in aucs), (
        f"the AUC metric is named {aucs[0].get('name')!r}; name it \"auc\" so that history has auc and val_auc"
    )


@pytest.mark.check(cell=CELL, points=1, name="Accuracy metric")
def test_accuracy_metric(evidence):
    metrics = _compiled(evidence)["metrics"]
    assert any(_accepted(m, ACCURACY_NAMES, ACCURACY_PATHS) for m in metrics), (
        "accuracy is not among the metrics: use metrics=[\"accuracy\", keras.metrics.AUC(name=\"auc\")]"
    )
