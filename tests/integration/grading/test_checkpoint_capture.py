"""The guard's checkpoint (capture.py) in a real Keras process: what it writes after each cell, and when not.

capture.py's source runs as the runner's guard cell does (a private namespace, a copy of the builtins),
in a fresh Python process so that its wrapped Model.compile / fit stay there; "cells" of a tiny model are
run in the student's namespace, each followed by the checkpoint entry, and what it wrote is moved out
after each call, as the runner does. Under ~15 s (TensorFlow's import is most of it).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap

from autograder.grading import engine
from autograder.grading.check_process import KIT_ROOT, check_env
from autograder.grading.evidence import (
    EVIDENCE_FILE,
    NOT_RECORDED,
    WEIGHTS_FILE,
    capture_settings,
    checkpoint_evidence,
    load_evidence,
)
from autograder.model import RunOutcome, Status
from autograder.sandbox.spec import INTERNALS

SCRIPT = textwrap.dedent('''
    import base64, builtins, json, os, sys
    from pathlib import Path

    os.chdir(sys.argv[1])
    settings = json.loads(sys.argv[2])
    source = Path(sys.argv[3]).read_text()
    student = {"__name__": "__main__"}
    exec(compile(source, "kit-guard", "exec"), {"__name__": "__kit_guard__",
         "__builtins__": dict(vars(builtins)), "KIT_NAMESPACE": student, "KIT_GUARD_KEY": "_kit_guard_t",
         "KIT_SETTINGS": settings, "KIT_INTERNALS": json.loads(sys.argv[4])})
    checkpoint = student["_kit_guard_t_checkpoint"]
    folder = Path(settings["evidence_dir"])
    snapshots = []

    def cell(code):
        exec(code, student)
        checkpoint()
        taken = {}
        if folder.exists():
            for path in sorted(folder.iterdir()):
                taken[path.name] = base64.b64encode(path.read_bytes()).decode()
                path.unlink()                          # the runner moves what a checkpoint wrote out
        snapshots.append(taken)

    cell("import numpy as np\\nimport keras\\nimport matplotlib.pyplot as plt")
    cell("x = 1")
    cell("""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    rng = np.random.default_rng(0)
    data, labels = rng.normal(size=(64, 4)).astype("float32"), (rng.random(64) > 0.5).astype("float32")
    """)
    cell('model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", '
         'metrics=["accuracy", keras.metrics.AUC(name="auc")])')
    cell("y = 2")
    cell("history = model.fit(data, labels, validation_data=(data, labels), epochs=2, batch_size=16, verbose=0)")
    cell("print('a cell that changes nothing the checkpoint tracks')")
    cell("""
    def plot_history(history, metric):
        fig, ax = plt.subplots()
        ax.plot(history.history[metric], label=f"train_{metric}")
        ax.plot(history.history[f"val_{metric}"], label=f"val_{metric}")
        ax.set_xlabel("Epoch"); ax.set_ylabel(metric); ax.legend()
        print("drawn", metric)
    """)
    cell("z = 3")
    print(json.dumps(snapshots))
''')


def test_the_checkpoint_writes_what_was_recorded_when_it_changed(tmp_path):
    settings = capture_settings()
    capture_py = KIT_ROOT / "autograder" / "sandbox" / "payload" / "capture.py"
    env = {**check_env(1), "MPLBACKEND": "agg"}
    internals = {library: str(INTERNALS / f"{library}.py") for library in ("keras", "matplotlib")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), json.dumps(settings), str(capture_py), json.dumps(internals)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    # the student's own print only: the checkpoint printed nothing, and plot_history's prints were swallowed
    assert lines[:-1] == ["a cell that changes nothing the checkpoint tracks"], proc.stdout[-2000:]
    snapshots = [{name: base64.b64decode(data) for name, data in taken.items()} for taken in json.loads(lines[-1])]
    imports, unchanged, built, compiled, unchanged2, fitted, unchanged3, plotted, unchanged4 = snapshots

    def evidence(taken):
        folder = tmp_path / f"check{len(list(tmp_path.glob('check*')))}"
        folder.mkdir()
        for name, data in taken.items():
            (folder / name).write_bytes(data)
        return load_evidence(folder)  # validates against the schema

    first = evidence(imports)
    assert set(imports) == {EVIDENCE_FILE} and first["checkpoint"] is True
    assert all(
        first[p] is None and first["errors"][p] == NOT_RECORDED for p in ("compile", "history", "weights", "plots")
    )
    assert unchanged == {} and built == {} and unchanged2 == {} and unchanged3 == {} and unchanged4 == {}

    after_compile = evidence(compiled)
    assert set(compiled) == {EVIDENCE_FILE}
    assert after_compile["compile"]["recorded"] is True and after_compile["compile"]["optimizer"]["is_adam"] is True
    assert after_compile["compile"]["optimizer"]["iterations"] == 0
    assert after_compile["history"] is None and after_compile["weights"] is None and after_compile["plots"] is None

    after_fit = evidence(fitted)
    assert set(fitted) == {EVIDENCE_FILE, WEIGHTS_FILE} and fitted[WEIGHTS_FILE].startswith(b"\x89HDF")
    assert after_fit["weights"] == WEIGHTS_FILE and after_fit["compile"]["optimizer"]["iterations"] == 8
    history = after_fit["history"]
    assert history["recorded"] and history["is_model_history"] and history["epoch"] == [0, 1]
    assert set(history["history"]) == {"loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"}
    assert after_fit["plots"] is None and after_fit["errors"] == {"plots": NOT_RECORDED}

    after_plot = evidence(plotted)
    assert set(plotted) == {EVIDENCE_FILE}  # the weights were not saved again
    assert set(after_plot["plots"]) == {"accuracy", "auc", "loss"} and after_plot["errors"] == {}
    assert all(call["error"] is None and len(call["figures"]) == 1 for call in after_plot["plots"].values())

    # the grader takes it, with the weights of the checkpoint that saved them (the runner keeps them by name)
    kept = {**fitted, **plotted}
    run = engine.SandboxRun(RunOutcome(Status.KERNEL_DIED, "the kernel died"), None, {}, 1.0, kept)
    assert engine.evidence_to_check(run, True) == (checkpoint_evidence(kept), True)
    assert set(checkpoint_evidence(kept)) == {EVIDENCE_FILE, WEIGHTS_FILE}
