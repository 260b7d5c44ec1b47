"""The grader's own evaluation of a student's trained model.

The given code of the lab (setup, data, tokenizer, model: the locked cells of
the instructor's source notebook) is run here, in the grader's process, to
rebuild the architecture and the tokenizer; the student's weights are loaded
into it and evaluated on the validation split and on the hidden test split.
``check_process.py`` keeps this warm in a long-lived process, one per grading process.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

from .weights_check import check_weights_file


def given_namespace(context: dict) -> dict:
    os.environ["SPAM_LAB_SPLITS"] = context["public_splits"]
    os.environ["SPAM_LAB_SEED"] = str(context["seed"])
    os.environ["SPAM_LAB_DATASET"] = context["dataset"]
    sys.path.insert(0, context["lab_dir"])
    namespace: dict = {"__name__": "__given__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(Path(context["given_code"]).read_text(encoding="utf-8"), "given_code", "exec"), namespace)
    return namespace


def training_steps(given: dict) -> int | None:
    """Batches in one full epoch over the given training split."""
    steps = int(given["train_ds"].cardinality())
    return steps if steps > 0 else None


def reevaluate_weights(context: dict, weights: Path, given: dict) -> dict:
    """AUC of the given model with these weights, on the validation and the hidden test split."""
    keras = given["keras"]
    model = given["model"]
    # libhdf5 allocates what a dataset declares: the file's headers are checked before Keras reads its data
    check_weights_file(weights, [(tuple(w.shape), w.dtype) for w in model.weights])
    try:
        model.load_weights(weights)
    except Exception as exc:  # noqa: BLE001 - any mismatch means "not the given model"
        raise AssertionError(
            f"the trained weights do not fit the given model ({type(exc).__name__}); "
            "train the model built by build_model(), do not change its architecture"
        ) from None
    if "hidden_ds" not in given:  # once per process: compiled, its test step traced on the first evaluate
        model.compile(loss="binary_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
        sys.path.insert(0, context["lab_dir"])
        import spam_data

        test_texts, test_labels = spam_data.read_splits_file(context["hidden_test"])["test"]
        given["hidden_ds"] = given["make_dataset"](test_texts, test_labels, shuffle=False)
    val = model.evaluate(given["val_ds"], verbose=0, return_dict=True)
    test = model.evaluate(given["hidden_ds"], verbose=0, return_dict=True)
    return {"val_auc": float(val["auc"]), "hidden_auc": float(test["auc"])}
