"""The guard and capture cells (capture.py, as runner.py builds them) against a kernel-like namespace.

Each scenario runs in a fresh Python process (the guard patches Keras'
Model class for the whole process): the guard cell, one "student" cell and
the capture cell are executed in one namespace dict, as IPython runs cells in
its user namespace, on a tiny Keras model. The evidence left behind is then
judged by the real compile checks. About 10 s per scenario (TensorFlow start).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from corpus import check_modules
from evidence_samples import CONTEXT  # the kit's Grading() settings, as the checks are told them
from kit_testing import REPO

from autograder.grading.evidence import load_evidence

compile_checks = check_modules()["test_compile"]

DRIVER = """
import builtins, os, sys
from pathlib import Path
sys.path.insert(0, os.environ["KIT_ROOT"])
from autograder.grading.evidence import capture_settings
from autograder.sandbox.bwrap import CAPTURE
from autograder.sandbox.payload.runner import capture_source_with_guard, guard_source
source, settings = CAPTURE.read_text(encoding="utf-8"), capture_settings()
key = "_kit_guard_" + os.environ["KIT_TOKEN"]
user = {"__name__": "__main__", "__builtins__": builtins}
for code in (guard_source(source, key, settings), Path("student.py").read_text(),
             capture_source_with_guard(source, key, settings)):
    exec(compile(code, "<cell>", "exec"), user)
"""

SETUP = """
import keras, numpy as np, tensorflow as tf
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
x = np.random.default_rng(0).normal(size=(32, 3)).astype("float32")
y = (np.arange(32) % 2).astype("float32")
"""
FIT = "history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)\n"


def run_cells(tmp_path: Path, student: str) -> dict:
    (tmp_path / "student.py").write_text(textwrap.dedent(SETUP) + textwrap.dedent(student))
    env = {
        **os.environ,
        "KIT_ROOT": str(REPO),
        "KIT_TOKEN": "5eed",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return load_evidence(tmp_path / "evidence")


def compile_failures(evidence) -> dict[str, str | None]:
    results = {}
    for name in (
        "test_optimizer_is_adam",
        "test_learning_rate",
        "test_loss_is_binary_crossentropy",
        "test_auc_metric",
        "test_accuracy_metric",
    ):
        args = (evidence, CONTEXT) if name == "test_learning_rate" else (evidence,)
        try:
            getattr(compile_checks, name)(*args)
            results[name] = None
        except AssertionError as exc:
            results[name] = str(exc)
    return results


def test_valid_variants_are_recorded_at_the_compile_call(tmp_path):
    evidence = run_cells(
        tmp_path,
        """
        model.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(),
                      metrics=[keras.metrics.BinaryAccuracy(), tf.keras.metrics.AUC(name="auc")])
        """
        + FIT,
    )
    assert evidence["guard"] is True and evidence["errors"] == {"plots": "NameError: plot_history is not defined"}
    compiled = evidence["compile"]
    assert compiled["recorded"] is True and compiled["compile_calls"] == 1
    assert compiled["optimizer"]["path"] == "keras.src.optimizers.adam.Adam" and compiled["optimizer"]["verified"]
    assert compiled["optimizer"]["given"] == {"kind": "str", "value": "adam"}
    assert compiled["optimizer"]["iterations"] == 8  # 2 epochs of 4 batches
    assert set(compile_failures(evidence).values()) == {None}  # every compile check passes
    history = evidence["history"]
    assert (history["recorded"], history["is_history"], history["is_model_history"]) == (True, True, True)
    assert history["steps_per_epoch"] == 4 and history["fit_calls"] == [{"epochs": 2, "epochs_run": 2, "steps": 4}]
    assert (tmp_path / "evidence" / "model.weights.h5").is_file()


def test_monkeypatched_keras_and_builtins_do_not_forge_the_evidence(tmp_path):
    evidence = run_cells(
        tmp_path,
        """
        import builtins, json, os
        class Adam(keras.optimizers.SGD):  # an SGD that calls itself Keras' Adam
            pass
        Adam.__module__, Adam.__qualname__ = "keras.src.optimizers.adam", "Adam"
        class BinaryCrossentropy(keras.losses.MeanSquaredError):
            pass
        BinaryCrossentropy.__module__ = "keras.src.losses.losses"
        keras.optimizers.Adam = Adam
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss=BinaryCrossentropy(),
                      metrics=["accuracy", keras.metrics.AUC(name="auc")])
        model._compile_config.config["loss"] = "binary_crossentropy"
        model._compile_config.config["optimizer"] = "adam"
        """
        + FIT
        + """
        _isinstance = builtins.isinstance
        builtins.isinstance = lambda obj, cls: True if cls is keras.callbacks.History else _isinstance(obj, cls)
        _type = builtins.type
        builtins.type = lambda *a: (keras.src.optimizers.adam.Adam if len(a) == 1 and _isinstance(a[0], Adam)
                                    else _type(*a))
        json.JSONEncoder.encode = lambda self, obj: '{"errors": {}}'
        json.dump = lambda obj, f, **kw: f.write('{"errors": {}}')
        os.makedirs("elsewhere", exist_ok=True)
        os.chdir("elsewhere")  # the capture writes where the guard started, not here
        """,
    )
    failures = compile_failures(evidence)
    assert "only claims to be keras.src.optimizers.adam.Adam" in failures["test_optimizer_is_adam"]
    assert (
        "only claims to be keras.src.losses.losses.BinaryCrossentropy" in (failures["test_loss_is_binary_crossentropy"])
    )
    assert [name for name, message in failures.items() if message is None] == [
        "test_learning_rate",
        "test_auc_metric",
        "test_accuracy_metric",
    ]
    assert evidence["compile"]["optimizer"]["is_adam"] is False
    assert evidence["history"]["is_history"] is True and evidence["history"]["recorded"] is True
    assert not (tmp_path / "elsewhere" / "evidence").exists()


def test_a_hand_made_history_is_not_the_recorded_one(tmp_path):
    evidence = run_cells(
        tmp_path,
        """
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
        """
        + FIT
        + """
        history = keras.callbacks.History()
        history.history, history.epoch, history.params = {"loss": [0.1, 0.1]}, [0, 1], {"steps": 4}
        model.history = history
        """,
    )
    history = evidence["history"]
    assert history["is_history"] is True
    assert (history["recorded"], history["is_model_history"], history["steps_per_epoch"]) == (False, False, None)


def test_without_the_guard_the_capture_reads_the_model_as_before(tmp_path):
    evidence = run_cells(
        tmp_path,
        """
        del globals()[next(name for name in globals() if name.startswith("_kit_guard_"))]
        keras.src.models.model.Model.compile = keras.src.trainers.trainer.Trainer.compile  # unwrapped
        model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy", keras.metrics.AUC(name="auc")])
        """
        + FIT,
    )
    assert evidence["guard"] is False and evidence["compile"]["recorded"] is False
    assert evidence["compile"]["loss"] == {"kind": "str", "value": "binary_crossentropy"}  # from _compile_config
    assert set(compile_failures(evidence).values()) == {None}
    assert evidence["history"]["is_model_history"] is True and evidence["history"]["steps_per_epoch"] == 4


def test_an_uncompiled_model_fails_clearly(tmp_path):
    evidence = run_cells(tmp_path, "history = None\n")
    assert evidence["compile"] == {"compiled": False, "recorded": False, "optimizer": None, "loss": None, "metrics": []}
    assert {m.split(":")[0] for m in compile_failures(evidence).values()} == {"the model is not compiled"}
