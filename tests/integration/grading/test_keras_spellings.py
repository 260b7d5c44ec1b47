"""Spellings Keras 3 accepts in compile and fit, judged by the real checks.

Each case compiles and fits a tiny Keras model in this process (two epochs of
four batches), records it with capture.py's own capture (the path it takes
when no guard recorded the calls: what the model keeps of its compile
arguments) and runs the compile and fit checks on that evidence. The checks
judging the grader's re-evaluation (threshold, honesty, hidden data) need the
lab's model and are covered by the graded corpus.
"""

from __future__ import annotations

import pytest
from corpus import check_modules
from evidence_samples import CONTEXT as GRADING_CONTEXT

from autograder.grading.evidence import capture_settings, load_evidence

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

_MODULES = check_modules()
compile_checks, fit_checks = _MODULES["test_compile"], _MODULES["test_fit"]
STEPS = 4  # 32 samples in batches of 8
CONTEXT = {**GRADING_CONTEXT, "training_steps": STEPS}  # the kit's Grading() settings, this model's steps
CHECKS = {
    "test_optimizer_is_adam": lambda e: compile_checks.test_optimizer_is_adam(e),
    "test_learning_rate": lambda e: compile_checks.test_learning_rate(e, CONTEXT),
    "test_loss_is_binary_crossentropy": lambda e: compile_checks.test_loss_is_binary_crossentropy(e),
    "test_auc_metric": lambda e: compile_checks.test_auc_metric(e),
    "test_accuracy_metric": lambda e: compile_checks.test_accuracy_metric(e),
    "test_history_type": lambda e: fit_checks.test_history_type(e),
    "test_history_keys": lambda e: fit_checks.test_history_keys(e),
    "test_epochs": lambda e: fit_checks.test_epochs(e, CONTEXT),
}
REFERENCE_COMPILE = (
    'optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy", '
    'metrics=["accuracy", keras.metrics.AUC(name="auc")]'
)
REFERENCE_FIT = "x, y, validation_data=(x, y), epochs=2, batch_size=8, verbose=0"


def recorded(tmp_path, compile_args: str, fit_args: str = REFERENCE_FIT) -> dict:
    """Compile and fit a fresh model as written, then capture it as the capture cell does."""
    import numpy as np

    from autograder.sandbox.payload.capture import _kit_capture, _Refs

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 3)).astype("float32")
    y = (x[:, 0] > 0).astype("float32")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(inputs))  # as the lab's
    scope = {"keras": keras, "tf": tf, "model": model, "x": x, "y": y}
    exec(f"model.compile({compile_args})\nhistory = model.fit({fit_args})", scope)
    _kit_capture({"model": model, "history": scope["history"]}, _Refs(tmp_path / "evidence"), None, capture_settings())
    return load_evidence(tmp_path / "evidence")


def failures(evidence) -> dict[str, str]:
    found = {}
    for name, check in CHECKS.items():
        try:
            check(evidence)
        except AssertionError as exc:
            found[name] = str(exc)
    return found


VALID_COMPILES = {
    "strings Adam, BCE, acc, auc": 'optimizer="Adam", loss="BCE", metrics=["acc", "auc"]',
    "ADAM, BinaryCrossentropy, binary_accuracy, AUC(curve=ROC)": 'optimizer="ADAM", loss="BinaryCrossentropy", '
    'metrics=["binary_accuracy", keras.metrics.AUC(name="auc", curve="ROC")]',
    "tf.keras objects and function": "optimizer=tf.keras.optimizers.Adam(learning_rate=1e-3), loss=tf.keras.losses.binary_crossentropy, "
    'metrics=[tf.keras.metrics.BinaryAccuracy(name="accuracy"), tf.keras.metrics.AUC(name="auc")]',
    "keras.*.get and a tuple of metrics": 'optimizer=keras.optimizers.get("adam"), loss=keras.losses.get("binary_crossentropy"), '
    'metrics=("accuracy", "auc")',
    "nested lists": 'optimizer="adam", loss=["binary_crossentropy"], metrics=[["accuracy", "auc"]]',
    "per-output dicts": 'optimizer="adam", loss={"out": "binary_crossentropy"}, '
    'metrics={"out": ["accuracy", keras.metrics.AUC(name="auc")]}',
    "BinaryCrossentropy(label_smoothing), BinaryAccuracy()": "optimizer=keras.optimizers.Adam(5e-4), loss=keras.losses.BinaryCrossentropy(label_smoothing=0.05), "
    'metrics=[keras.metrics.BinaryAccuracy(), keras.metrics.AUC(name="auc", num_thresholds=500)]',
}

WRONG_COMPILES = {
    '"AUC": history keys AUC / val_AUC': (
        'optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", "AUC"]',
        {"test_auc_metric": "val_AUC"},
    ),
    "keras.metrics.Accuracy(): exact match, 0 on probabilities": (
        'optimizer="adam", loss="binary_crossentropy", '
        'metrics=[keras.metrics.Accuracy(), keras.metrics.AUC(name="auc")]',
        {"test_accuracy_metric": "reports 0"},
    ),
    "AUC(curve=PR)": (
        'optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc", curve="PR")]',
        {"test_auc_metric": "ROC"},
    ),
    '"adamw"': (
        'optimizer="adamw", loss="binary_crossentropy", metrics=["accuracy", "auc"]',
        {"test_optimizer_is_adam": "AdamW"},
    ),
    "binary focal cross-entropy": (
        'optimizer="adam", loss="binary_focal_crossentropy", metrics=["accuracy", "auc"]',
        {"test_loss_is_binary_crossentropy": "binary_focal_crossentropy"},
    ),
    '"Accuracy": history keys Accuracy / val_Accuracy': (
        'optimizer="adam", loss="binary_crossentropy", metrics=["Accuracy", "auc"]',
        {"test_history_keys": "'val_Accuracy'"},
    ),
}

VALID_FITS = {  # fit's arguments, and (epochs run, validations run)
    "validation_freq=2 over 3 epochs": (
        "x, y, validation_data=(x, y), validation_freq=2, epochs=3, batch_size=8",
        (3, 1),
    ),
    "EarlyStopping (stops after 2 of 6 epochs), class_weight, verbose=0": (
        "x, y, validation_data=(x, y), epochs=6, batch_size=8, verbose=0, class_weight={0: 1.0, 1: 3.0}, "
        "callbacks=[keras.callbacks.EarlyStopping(monitor='val_loss', min_delta=1.0, patience=0, "
        "restore_best_weights=True)]",
        (2, 2),
    ),
    "a tf.data pipeline as validation data": (
        "x, y, validation_data=tf.data.Dataset.from_tensor_slices((x, y)).batch(16), epochs=2, batch_size=8",
        (2, 2),
    ),
}

WRONG_FITS = {
    "steps_per_epoch cuts the epochs short": (
        "x, y, validation_data=(x, y), epochs=2, batch_size=8, steps_per_epoch=2",
        {"test_epochs": "2 batches"},
    ),
    "no validation data": ("x, y, epochs=2, batch_size=8", {"test_history_keys": "val_loss"}),
}


@pytest.mark.parametrize("compile_args", VALID_COMPILES.values(), ids=VALID_COMPILES.keys())
def test_spellings_keras_accepts_pass(tmp_path, compile_args):
    assert failures(recorded(tmp_path, compile_args)) == {}


@pytest.mark.parametrize("compile_args, fails", WRONG_COMPILES.values(), ids=WRONG_COMPILES.keys())
def test_wrong_compiles_fail_exactly_their_checks(tmp_path, compile_args, fails):
    found = failures(recorded(tmp_path, compile_args))
    assert set(found) == set(fails), found
    for check, word in fails.items():
        assert word in found[check], found[check]


@pytest.mark.parametrize("fit_args, runs", VALID_FITS.values(), ids=VALID_FITS.keys())
def test_fits_a_grader_accepts_pass(tmp_path, fit_args, runs):
    evidence = recorded(tmp_path, REFERENCE_COMPILE, fit_args + ", verbose=0" * ("verbose" not in fit_args))
    history = evidence["history"]
    assert (len(history["epoch"]), len(history["history"]["val_auc"])) == runs
    assert failures(evidence) == {}


@pytest.mark.parametrize("fit_args, fails", WRONG_FITS.values(), ids=WRONG_FITS.keys())
def test_wrong_fits_fail_exactly_their_checks(tmp_path, fit_args, fails):
    found = failures(recorded(tmp_path, REFERENCE_COMPILE, fit_args + ", verbose=0"))
    assert set(found) == set(fails), found
    for check, word in fails.items():
        assert word in found[check], found[check]


def test_every_string_keras_resolves_to_the_loss_or_accuracy_is_accepted():
    """The checks' spelling lists cover Keras' own aliases (keras.losses.get / keras.metrics.get)."""
    from keras.src.losses import ALL_OBJECTS_DICT as LOSSES
    from keras.src.metrics import ALL_OBJECTS_DICT as METRICS

    bce = {keras.losses.BinaryCrossentropy, keras.losses.binary_crossentropy}
    accuracy = {keras.metrics.BinaryAccuracy, keras.metrics.binary_accuracy}
    bce_names = [name for name, obj in LOSSES.items() if obj in bce]
    accuracy_names = [name for name, obj in METRICS.items() if obj in accuracy]
    assert len(bce_names) >= 4 and len(accuracy_names) >= 2
    assert all(name.lower() in compile_checks.BCE_NAMES for name in bce_names), bce_names
    assert all(name.lower() in compile_checks.ACCURACY_NAMES for name in accuracy_names), accuracy_names
    assert METRICS[compile_checks.AUC_NAME] is keras.metrics.AUC
