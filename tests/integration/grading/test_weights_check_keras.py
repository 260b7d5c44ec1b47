"""What a real ``Model.save_weights`` writes passes the weights check; the same file with a forged dataset does not."""

import subprocess
import sys

from kit_testing import REPO

from autograder.grading.check_process import check_env

# A tiny Keras model, trained one step with Adam (its state is saved too): checked as saved, then with an extra
# dataset that declares 4 TB; Keras still loads the genuine file.
SCRIPT = """
import sys
import h5py
import numpy as np
import keras
from autograder.grading.weights_check import check_weights_file

def build():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    return model

model, path = build(), sys.argv[1] + "/model.weights.h5"
model.fit(np.ones((8, 4)), np.ones((8, 1)), epochs=1, verbose=0)
model.save_weights(path)
shapes = [(tuple(w.shape), w.dtype) for w in model.weights]
check_weights_file(path, shapes)
with h5py.File(path, "r") as f:
    print("optimizer state saved:", "optimizer" in f)
fresh = build()
fresh.load_weights(path)
print("loaded:", all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), model.get_weights())))
with h5py.File(path, "a") as f:
    f.create_dataset("layers/dense/vars/2", shape=(10**6, 10**6), dtype="f4", chunks=(1000, 1000))
try:
    check_weights_file(path, shapes)
except AssertionError as exc:
    print("refused:", exc)
"""


def test_a_genuine_keras_weights_file_passes_and_a_forged_one_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)],
        env=check_env(1),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "optimizer state saved: True" in lines and "loaded: True" in lines
    assert any(
        line.startswith("refused:") and "unexpected weights of shape (1000000, 1000000)" in line for line in lines
    )
