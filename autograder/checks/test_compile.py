"""Exercise 1: model.compile with Adam, binary cross-entropy, accuracy and AUC."""

import pytest

CELL = "test_compile"
BCE_NAMES = {"binary_crossentropy", "bce", "binarycrossentropy"}


def _compiled(evidence):
    compiled = evidence.get("compile")
    assert compiled and compiled["compiled"], (
        "the model is not compiled: call model.compile(optimizer=..., loss=..., metrics=...)"
        + (f" ({evidence['errors']['compile']})" if "compile" in evidence["errors"] else "")
    )
    return compiled


def _names(described):
    if not described:
        return set()
    values = {described.get("value"), described.get("name"), described.get("class"), described.get("function")}
    return {str(v).lower() for v in values if v}


@pytest.mark.check(cell=CELL, points=1, name="Optimizer is Adam")
def test_optimizer_is_adam(evidence):
    optimizer = _compiled(evidence)["optimizer"]
    assert optimizer and optimizer["is_adam"], (
        f"the optimizer is {optimizer and optimizer.get('class')}, not Adam: "
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
    assert _names(loss) & BCE_NAMES, (
        f"the loss is {loss.get('value') or loss.get('class')}; a single sigmoid output for two classes "
        "needs loss=\"binary_crossentropy\" (or keras.losses.BinaryCrossentropy())"
    )
    assert not loss.get("from_logits"), (
        "BinaryCrossentropy(from_logits=True) expects raw scores, but the model already ends in a sigmoid"
    )


@pytest.mark.check(cell=CELL, points=1, name="AUC metric named 'auc'")
def test_auc_metric(evidence):
    metrics = _compiled(evidence)["metrics"]
    aucs = [m for m in metrics if m and m.get("class") == "AUC"]
    assert aucs, "no AUC metric is compiled: add keras.metrics.AUC(name=\"auc\") to metrics"
    assert any(m.get("name") == "auc" for m in aucs), (
        f"the AUC metric is named {aucs[0].get('name')!r}; name it \"auc\" so that history has auc and val_auc"
    )


@pytest.mark.check(cell=CELL, points=1, name="Accuracy metric")
def test_accuracy_metric(evidence):
    metrics = _compiled(evidence)["metrics"]
    assert any(_names(m) & {"accuracy", "acc", "binary_accuracy", "binaryaccuracy"} for m in metrics), (
        "accuracy is not among the metrics: use metrics=[\"accuracy\", keras.metrics.AUC(name=\"auc\")]"
    )
