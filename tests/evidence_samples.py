"""Evidence shaped like what capture.py records for the reference solution, for tests that need no notebook run."""

from __future__ import annotations

import copy

from autograder.grading.evidence import PLOT_HISTORY
from autograder.settings import Grading

TRAIN_STEPS = 227
_GRADING = Grading()  # the kit's defaults, which are the calibrated course's values
CONTEXT = {
    **{name: getattr(_GRADING, name) for name in _GRADING.trait_names(config=True)},
    "plot_history": PLOT_HISTORY,
    "training_steps": TRAIN_STEPS,
}


def figure(metric, labels=None, ys=None, xlabel="Epoch", ylabel=None, legend=True):
    values = PLOT_HISTORY[metric]
    labels = labels or [f"train_{metric}", f"val_{metric}"]
    ys = ys or [values[metric], values[f"val_{metric}"]]
    lines = [{"label": label, "x": [1.0, 2.0, 3.0], "y": y} for label, y in zip(labels, ys)]
    return {
        "axes": [
            {
                "xlabel": xlabel,
                "ylabel": metric if ylabel is None else ylabel,
                "title": "",
                "legend": labels if legend else None,
                "lines": lines,
            }
        ]
    }


def keras_object(path: str, verified: bool = True, **attrs) -> dict:
    """A passed object as capture.py describes it; ``verified`` = it is the genuine Keras object."""
    module, name = path.rsplit(".", 1)
    return {
        "kind": "object",
        "class": "function" if name.islower() else name,
        "module": "builtins" if name.islower() else module,
        "path": path,
        "verified": verified,
        **attrs,
    }


ADAM = keras_object("keras.src.optimizers.adam.Adam")
AUC = keras_object("keras.src.metrics.confusion_metrics.AUC", name="auc")
BCE = "keras.src.losses.losses.BinaryCrossentropy"


def reference_evidence() -> dict:
    """What the reference solution leaves behind (shape of capture.py's output)."""
    return copy.deepcopy(
        {
            "errors": {},
            "guard": True,
            "compile": {
                "compiled": True,
                "recorded": True,
                "compile_calls": 1,
                "optimizer": {
                    **ADAM,
                    "name": "adam",
                    "is_adam": True,
                    "learning_rate": 1e-3,
                    "iterations": TRAIN_STEPS,
                    "given": ADAM,
                },
                "loss": {"kind": "str", "value": "binary_crossentropy"},
                "metrics": [{"kind": "str", "value": "accuracy"}, AUC],
            },
            "history": {
                "class": "keras.src.callbacks.history.History",
                "is_history": True,
                "is_model_history": True,
                "recorded": True,
                "fit_calls": [{"epochs": 1, "epochs_run": 1, "steps": TRAIN_STEPS}],
                "epoch": [0],
                "history": {
                    "loss": [0.2],
                    "accuracy": [0.93],
                    "auc": [0.95],
                    "val_loss": [0.1],
                    "val_accuracy": [0.96],
                    "val_auc": [0.9765],
                },
                "steps_per_epoch": TRAIN_STEPS,
            },
            "weights": "model.weights.h5",
            "plots": {m: {"error": None, "figures": [figure(m)]} for m in PLOT_HISTORY},
        }
    )


def run_hidden_checks(scratch, context: dict) -> list[dict]:
    """The real hidden checks in a pytest of their own, told ``context`` (written to ``scratch``), as the check
    process runs them; their records."""
    import json
    import os
    import subprocess
    import sys

    from autograder.grading.check_process import CHECKS_DIR, KIT_ROOT, PYTEST_ARGS

    (scratch / "context.json").write_text(json.dumps(context))
    env = {
        **os.environ,
        "KIT_CHECK_CONTEXT": str(scratch / "context.json"),
        "KIT_CHECK_RESULTS": str(scratch / "results.json"),
        "PYTHONPATH": str(KIT_ROOT),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *PYTEST_ARGS],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (scratch / "results.json").is_file(), (
        f"the checks did not run:\n{CHECKS_DIR}\n" + proc.stdout[-3000:] + proc.stderr[-3000:]
    )
    return json.loads((scratch / "results.json").read_text())
