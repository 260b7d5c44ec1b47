"""A corpus of student submissions with the grade each one deserves.

Every variant starts from the RELEASED notebook filled with the reference
answers, then replaces the code of one exercise cell (``cell``), or leaves the
stubs in place. ``fails`` names every hidden check the variant must fail and
says why; every other check must pass. Expectations follow from what the
variant does, not from what the grader printed:

* a mistake costs the check that tests it, plus every check that can no
  longer be satisfied because of it (a *downstream* failure, named as such);
* checks that judge training quality (threshold on validation AUC, hidden
  test AUC) fail only when the mistake really stops the model from learning;
  these variants say which property of training makes that so, and the
  figures measured under the grader's seed are in the notes (``measured``);
* a notebook that cannot run still earns the checks of exercises that do not
  depend on the broken one.

Check ids are the test function names in ``autograder/grading/checks``; their cell
and points are read from the checks' ``@pytest.mark.check`` markers.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from kit_testing import fill, release_notebook, source_answers

CHECK_MODULES = (
    "autograder.grading.checks.test_compile",
    "autograder.grading.checks.test_fit",
    "autograder.grading.checks.test_plot",
)
TEST_CELLS = ("test_compile", "test_fit", "test_plot")


def check_modules() -> dict:
    """The hidden check modules, imported outside their own pytest session.

    Their ``check`` marker is registered by autograder/grading/checks/conftest.py only,
    so importing them here would warn about an unknown marker.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
        return {name.rsplit(".", 1)[1]: importlib.import_module(name) for name in CHECK_MODULES}


def check_table() -> dict[str, dict]:
    """{check id: {cell, points, name}} from the markers of the hidden checks."""
    table = {}
    for module in check_modules().values():
        for attr, fn in vars(module).items():
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "check"]
            if attr.startswith("test_") and marks:
                table[attr] = {k: marks[0].kwargs[k] for k in ("cell", "points", "name")}
    return table


# --- cell code ------------------------------------------------------------------


def compile_code(
    optimizer="keras.optimizers.Adam(learning_rate=learning_rate)",
    loss='"binary_crossentropy"',
    metrics='["accuracy", keras.metrics.AUC(name="auc")]',
    learning_rate="1e-3",
) -> str:
    return (
        f"learning_rate = {learning_rate}\n\n"
        f"model.compile(\n    optimizer={optimizer},\n    loss={loss},\n    metrics={metrics},\n)\n"
    )


def fit_code(body="history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)", epochs="1") -> str:
    return f"epochs = {epochs}\n\n{body}\n"


PLOT_LOOP = '\n\nfor metric in ["accuracy", "auc", "loss"]:\n    plot_history(history, metric)\n'


def plot_code(train_label='f"train_{metric}"', val_label='f"val_{metric}"', draw_val=True) -> str:
    val_line = (
        f'    ax.plot(epochs_run, history.history[f"val_{{metric}}"], marker="o", label={val_label})\n'
        if draw_val
        else ""
    )
    return (
        'def plot_history(history, metric="accuracy"):\n'
        "    epochs_run = range(1, len(history.history[metric]) + 1)\n"
        "    fig, ax = plt.subplots(figsize=(6, 4))\n"
        f'    ax.plot(epochs_run, history.history[metric], marker="o", label={train_label})\n'
        f"{val_line}"
        '    ax.set_xlabel("Epoch")\n'
        "    ax.set_ylabel(metric)\n"
        "    ax.legend()\n"
        "    ax.grid(True)\n"
        "    plt.show()\n" + PLOT_LOOP
    )


# --- the variants ---------------------------------------------------------------

UNTRAINED = "the model's weights stay at their random start, far below any sane AUC threshold"
NO_HISTORY = "`history` is never assigned, so nothing about training can be read from it"
NO_REPORTED_VAL_AUC = "downstream: the history reports no validation AUC, so there is nothing to confirm"
NOT_COMPILED = "the compile cell never ran, so the model is not compiled"
FABRICATED = "the reported val_auc is not what the trained weights score on the validation split"


@dataclass(frozen=True)
class Variant:
    name: str  # also the student id
    kind: str  # valid, wrong, broken
    what: str  # what the student did
    cell: str | None = None  # grade_id of the replaced solution cell; None = keep the reference
    code: str | None = None
    stubs: bool = False  # the plain release, stubs unchanged
    fails: dict = field(default_factory=dict)  # check id -> why it must fail
    measured: str = ""  # figures behind training-quality expectations

    def notebook(self, course_root: Path) -> nbformat.NotebookNode:
        nb = release_notebook(course_root)
        if self.stubs:
            return nb
        answers = dict(source_answers(course_root))
        if self.cell:
            answers[self.cell] = self.code
        return fill(nb, answers)

    def expected(self, table: dict) -> dict[str, bool]:
        unknown = set(self.fails) - set(table)
        assert not unknown, f"{self.name}: unknown checks {unknown}"
        return {check: check not in self.fails for check in table}


ALL_FIT = (
    "test_history_type",
    "test_history_keys",
    "test_epochs",
    "test_val_auc_threshold",
    "test_reported_val_auc_is_honest",
    "test_hidden_auc",
)
ALL_COMPILE = (
    "test_optimizer_is_adam",
    "test_learning_rate",
    "test_loss_is_binary_crossentropy",
    "test_auc_metric",
    "test_accuracy_metric",
)
ALL_PLOT = (
    "test_all_metrics",
    "test_one_figure_per_call",
    "test_line_labels",
    "test_data_matches_history",
    "test_labels_and_legend",
)

VARIANTS = [
    # --- valid: full marks ---------------------------------------------------------
    Variant("reference", "valid", "the source notebook's solutions"),
    Variant(
        "adam_string",
        "valid",
        'optimizer="adam" (Keras default learning rate 1e-3)',
        "compile",
        compile_code(optimizer='"adam"'),
    ),
    Variant(
        "bce_object",
        "valid",
        "loss=keras.losses.BinaryCrossentropy()",
        "compile",
        compile_code(loss="keras.losses.BinaryCrossentropy()"),
    ),
    Variant(
        "tf_keras_auc",
        "valid",
        'tf.keras.metrics.AUC(name="auc") (tf.keras is Keras 3 here)',
        "compile",
        compile_code(metrics='["accuracy", tf.keras.metrics.AUC(name="auc")]'),
    ),
    Variant(
        "lr_5e-4",
        "valid",
        "learning_rate = 5e-4, inside the sane range; still learns in one epoch",
        "compile",
        compile_code(learning_rate="5e-4"),
    ),
    Variant("two_epochs", "valid", "epochs = 2", "fit", fit_code(epochs="2")),
    Variant(
        "metrics_reordered",
        "valid",
        "metrics=[AUC(name='auc'), 'accuracy']",
        "compile",
        compile_code(metrics='[keras.metrics.AUC(name="auc"), "accuracy"]'),
    ),
    Variant(
        "compile_aliases",
        "valid",
        'optimizer="Adam", loss="BCE", metrics=[BinaryAccuracy(name="accuracy"), '
        '"auc"]: spellings Keras resolves to the same objects',
        "compile",
        compile_code(
            optimizer='"Adam"', loss='"BCE"', metrics='[keras.metrics.BinaryAccuracy(name="accuracy"), "auc"]'
        ),
    ),
    Variant(
        "plot_pandas",
        "valid",
        "pandas plotting after plt.figure() (an empty extra figure Jupyter does not "
        'show): curves named by the history\'s keys, x from 0, x label "Epochs"',
        "plot_history",
        "import pandas as pd\n\n\n"
        'def plot_history(history, metric="accuracy"):\n'
        "    plt.figure(figsize=(6, 4))\n"
        '    ax = pd.DataFrame(history.history)[[metric, f"val_{metric}"]].plot(marker="o", grid=True)\n'
        '    ax.set_xlabel("Epochs")\n'
        "    ax.set_ylabel(metric)\n"
        "    plt.show()\n" + PLOT_LOOP,
    ),
    Variant(
        "plot_legend_list",
        "valid",
        'pyplot state, curves named only in plt.legend([...]) as "Training auc" / '
        '"Validation auc", x = history.epoch, x label "Epoch #"',
        "plot_history",
        'def plot_history(history, metric="accuracy"):\n'
        "    plt.figure()\n"
        '    plt.plot(history.epoch, history.history[metric], "o-")\n'
        '    plt.plot(history.epoch, history.history["val_" + metric], "o--")\n'
        '    plt.legend([f"Training {metric}", f"Validation {metric}"])\n'
        '    plt.xlabel("Epoch #")\n'
        "    plt.ylabel(metric.upper())\n"
        "    plt.grid(True)\n" + PLOT_LOOP,
    ),
    # --- wrong: lose exactly the points of the mistake -------------------------------
    Variant(
        "sgd",
        "wrong",
        "plain SGD at learning rate 1e-3",
        "compile",
        compile_code(optimizer="keras.optimizers.SGD(learning_rate=learning_rate)"),
        fails={
            "test_optimizer_is_adam": "the optimizer is SGD",
            "test_val_auc_threshold": "plain SGD at 1e-3 barely moves the weights in one epoch",
            "test_hidden_auc": "same model as above: it has not learned to rank spam",
        },
    ),
    Variant(
        "rmsprop",
        "wrong",
        "RMSprop at learning rate 1e-3 (adaptive, trains as well as Adam here)",
        "compile",
        compile_code(optimizer="keras.optimizers.RMSprop(learning_rate=learning_rate)"),
        fails={"test_optimizer_is_adam": "the optimizer is RMSprop"},
    ),
    Variant(
        "categorical_ce",
        "wrong",
        'loss="categorical_crossentropy" on one sigmoid output',
        "compile",
        compile_code(loss='"categorical_crossentropy"'),
        fails={
            "test_loss_is_binary_crossentropy": "the loss is categorical cross-entropy",
            "test_val_auc_threshold": "with one output the softmax-normalised prediction is always 1, the "
            "loss is constantly 0 and has no gradient: " + UNTRAINED,
            "test_hidden_auc": "same untrained model",
        },
    ),
    Variant(
        "mse",
        "wrong",
        'loss="mse": a regression loss, but it still pushes the sigmoid towards the labels',
        "compile",
        compile_code(loss='"mse"'),
        fails={"test_loss_is_binary_crossentropy": "the loss is mean squared error"},
    ),
    Variant(
        "no_auc",
        "wrong",
        'metrics=["accuracy"], no AUC',
        "compile",
        compile_code(metrics='["accuracy"]'),
        fails={
            "test_auc_metric": "no AUC metric is compiled",
            "test_history_keys": "downstream: the history has no auc / val_auc",
            "test_reported_val_auc_is_honest": NO_REPORTED_VAL_AUC,
        },
    ),
    Variant(
        "auc_misnamed",
        "wrong",
        'AUC(name="roc_auc"): history keys roc_auc / val_roc_auc',
        "compile",
        compile_code(metrics='["accuracy", keras.metrics.AUC(name="roc_auc")]'),
        fails={
            "test_auc_metric": "the AUC metric is not named 'auc' (the grader still finds val_roc_auc "
            "as the AUC key, so the fit checks are not charged again)"
        },
    ),
    Variant(
        "no_validation",
        "wrong",
        "model.fit without validation_data",
        "fit",
        fit_code("history = model.fit(train_ds, epochs=epochs)"),
        fails={
            "test_history_keys": "no val_loss / val_accuracy / val_auc",
            "test_reported_val_auc_is_honest": NO_REPORTED_VAL_AUC,
        },
    ),
    Variant(
        "zero_epochs",
        "wrong",
        "epochs = 0: fit returns at once",
        "fit",
        fit_code(epochs="0"),
        fails={
            "test_history_keys": "the history is empty",
            "test_epochs": "no epoch ran",
            "test_val_auc_threshold": UNTRAINED,
            "test_reported_val_auc_is_honest": NO_REPORTED_VAL_AUC,
            "test_hidden_auc": UNTRAINED,
        },
    ),
    Variant(
        "fabricated_val_auc",
        "wrong",
        'a real fit, then history.history["val_auc"] = [0.999]',
        "fit",
        fit_code(
            'history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)\nhistory.history["val_auc"] = [0.999]'
        ),
        fails={"test_reported_val_auc_is_honest": FABRICATED},
    ),
    Variant(
        "handmade_history",
        "wrong",
        "a real fit, then a hand-made History with perfect numbers",
        "fit",
        fit_code(
            "model.fit(train_ds, validation_data=val_ds, epochs=epochs)\n"
            "history = keras.callbacks.History()\n"
            'history.history = {"loss": [0.01], "accuracy": [0.999], "auc": [0.999],\n'
            '                   "val_loss": [0.01], "val_accuracy": [0.999], "val_auc": [0.999]}\n'
            "history.epoch = [0]"
        ),
        fails={
            "test_history_type": "the History is not the one model.fit returned",
            "test_epochs": "a hand-made History records no training batches, so no epoch is shown",
            "test_reported_val_auc_is_honest": FABRICATED,
        },
    ),
    Variant(
        "train_on_val",
        "wrong",
        "fit on train_ds.concatenate(val_ds): validation data leaks into training",
        "fit",
        fit_code("history = model.fit(train_ds.concatenate(val_ds), validation_data=val_ds, epochs=epochs)"),
        fails={"test_epochs": "an epoch runs more batches than one pass over train_ds"},
    ),
    Variant(
        "extra_fit_on_val",
        "wrong",
        "an extra, unreported fit on val_ds before the reported fit on train_ds",
        "fit",
        fit_code(
            "model.fit(val_ds, epochs=1, verbose=0)\n"
            "history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)"
        ),
        fails={"test_epochs": "the optimizer made more updates than the reported epochs account for"},
    ),
    Variant(
        "random_weights",
        "wrong",
        "a real fit, then every weight overwritten with random values",
        "fit",
        fit_code(
            "history = model.fit(train_ds, validation_data=val_ds, epochs=epochs)\n"
            "rng = np.random.default_rng(0)\n"
            "model.set_weights([rng.normal(0, 0.05, w.shape) for w in model.get_weights()])"
        ),
        fails={
            "test_val_auc_threshold": "the saved weights are random: " + UNTRAINED,
            "test_reported_val_auc_is_honest": "the history describes weights that were thrown away",
            "test_hidden_auc": "random weights",
        },
    ),
    Variant(
        "plot_no_val_line",
        "wrong",
        "plot_history draws only the training curve",
        "plot_history",
        plot_code(draw_val=False),
        fails={
            "test_line_labels": "there is no val_<metric> line",
            "test_data_matches_history": "downstream: the validation values are not drawn",
        },
    ),
    Variant(
        "plot_wrong_labels",
        "wrong",
        'lines labelled "training" / "validation"',
        "plot_history",
        plot_code(train_label='"training"', val_label='"validation"'),
        fails={
            "test_line_labels": "labels are not train_<metric> / val_<metric> (the data check matches "
            "curves by their values, so it is not charged again)"
        },
    ),
    Variant(
        "plot_swapped_labels",
        "wrong",
        "the training curve labelled val_<metric> and the validation curve train_<metric>",
        "plot_history",
        plot_code(train_label='f"val_{metric}"', val_label='f"train_{metric}"'),
        fails={
            "test_line_labels": "the names sit on the wrong curves (both curves are drawn, so the data "
            "check is not charged)"
        },
    ),
    Variant(
        "plot_piled_up",
        "wrong",
        'pyplot state with neither a new figure nor plt.show(), x labelled "Step": '
        "in the notebook the three plots end up in one figure",
        "plot_history",
        'def plot_history(history, metric="accuracy"):\n'
        '    plt.plot(history.history[metric], marker="o", label=f"train_{metric}")\n'
        '    plt.plot(history.history[f"val_{metric}"], marker="o", label=f"val_{metric}")\n'
        '    plt.xlabel("Step")\n'
        "    plt.ylabel(metric)\n"
        "    plt.legend()\n" + PLOT_LOOP,
        fails={
            "test_one_figure_per_call": "the auc and loss calls draw into the figure the accuracy call left open",
            "test_labels_and_legend": 'the x axis is labelled "Step", not epochs',
        },
    ),
    Variant(
        "plot_draws_nothing",
        "wrong",
        "plot_history is defined but draws nothing",
        "plot_history",
        'def plot_history(history, metric="accuracy"):\n    pass\n' + PLOT_LOOP,
        fails={check: "nothing is drawn" for check in ALL_PLOT},
    ),
    # --- broken: the notebook does not run through ----------------------------------
    Variant(
        "syntax_error",
        "broken",
        "a syntax error in the compile cell (an unclosed bracket)",
        "compile",
        "learning_rate = 1e-3\n\nmodel.compile(\n    optimizer=keras.optimizers.Adam(learning_rate=learning_rate,\n"
        '    loss="binary_crossentropy",\n    metrics=["accuracy", keras.metrics.AUC(name="auc")],\n)\n',
        fails={
            **{check: NOT_COMPILED for check in ALL_COMPILE},
            **{
                check: "model.fit fails on the uncompiled model: " + NO_HISTORY
                for check in (
                    "test_history_type",
                    "test_history_keys",
                    "test_epochs",
                    "test_reported_val_auc_is_honest",
                )
            },
            "test_val_auc_threshold": UNTRAINED,
            "test_hidden_auc": UNTRAINED,
        },
    ),
    Variant(
        "fit_exception",
        "broken",
        "fit on the raw message strings instead of the token datasets",
        "fit",
        fit_code(
            "history = model.fit(train_texts, train_labels, validation_data=(val_texts, val_labels), epochs=epochs)"
        ),
        fails={
            **{
                check: "model.fit raises: " + NO_HISTORY
                for check in (
                    "test_history_type",
                    "test_history_keys",
                    "test_epochs",
                    "test_reported_val_auc_is_honest",
                )
            },
            "test_val_auc_threshold": UNTRAINED,
            "test_hidden_auc": UNTRAINED,
        },
    ),
    Variant(
        "release_stubs",
        "broken",
        "the plain release: every solution cell still raises NotImplementedError",
        stubs=True,
        fails={check: "stub left in place" for check in (*ALL_COMPILE, *ALL_FIT, *ALL_PLOT)},
    ),
]


def cell_scores(expected: dict[str, bool], table: dict) -> dict[str, float]:
    """Points per autograded test cell when exactly the expected checks pass."""
    scores = {cell: 0.0 for cell in TEST_CELLS}
    for check, passed in expected.items():
        if passed:
            scores[table[check]["cell"]] += float(table[check]["points"])
    return scores


def by_name(name: str) -> Variant:
    return next(v for v in VARIANTS if v.name == name)
