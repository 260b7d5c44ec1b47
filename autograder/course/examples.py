"""Example submissions built from the release: the reference and typical mistakes.

A student's notebook is the released notebook with some solution cells
replaced (``fill``); the reference answers come from the instructor's source
notebook (``source_answers``). The tests, the demo and the benchmark use the
same builders, so what they grade is what students hand in.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat


def fill(nb: nbformat.NotebookNode, answers: dict[str, str]) -> nbformat.NotebookNode:
    """A student's notebook: the released one with cells (by grade_id) replaced."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    return nb


def source_answers(source_notebook: Path) -> dict[str, str]:
    """The reference solutions, without the solution markers."""
    nb = nbformat.read(source_notebook, as_version=4)
    answers = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = "\n".join(
                line
                for line in cell.source.splitlines()
                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
            )
    return answers


# Cells (by grade_id) that turn the reference into a typical wrong submission.
WRONG_LOSS = {
    "compile": (
        "learning_rate = 1e-3\n"
        "model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate),\n"
        '              loss="mse", metrics=["accuracy"])\n'
    ),
}
NO_VALIDATION = {
    "fit": "epochs = 1\nhistory = model.fit(train_ds, epochs=epochs)\n",
}
FABRICATED = {
    "fit": (
        "epochs = 1\n"
        "# no training: a made-up history\n"
        "history = keras.callbacks.History()\n"
        "history.set_model(model)\n"
        "history.epoch = [0]\n"
        'history.history = {"loss": [0.1], "accuracy": [0.98], "auc": [0.99],\n'
        '                   "val_loss": [0.1], "val_accuracy": [0.98], "val_auc": [0.99]}\n'
    ),
}
BROKEN = {
    "compile": "learning_rate = 1e-3\nmodel.compile(optimizer=Adam(learning_rate))  # NameError: Adam\n",
}

VARIANTS = {
    "reference": {},
    "wrong-loss": WRONG_LOSS,
    "no-validation": NO_VALIDATION,
    "fabricated-history": FABRICATED,
    "broken": BROKEN,
}


def example_submissions(release_notebook: Path, source_notebook: Path) -> dict[str, bytes]:
    """Notebook files (bytes) per example student, plus a corrupt one."""
    released = nbformat.read(release_notebook, as_version=4)
    reference = source_answers(source_notebook)
    out = {}
    for name, changes in VARIANTS.items():
        out[name] = nbformat.writes(fill(released, {**reference, **changes})).encode()
    out["corrupt"] = out["reference"][: len(out["reference"]) // 3]  # a cut-off upload
    return out
