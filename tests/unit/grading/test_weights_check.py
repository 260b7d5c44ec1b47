"""A student's weights file is refused, from its headers alone, unless it holds just the given model's weights."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest

from autograder.grading import weights_check
from autograder.grading.check_process import KIT_ROOT
from autograder.grading.weights_check import check_weights_file

WEIGHTS = [((4, 3), "float32"), ((3,), "float32"), ((3, 1), "float32"), ((1,), "float32")]


def keras_like(path, optimizer=True, skip=(), **dataset_options):
    """The layout ``Model.save_weights`` writes (layers/<layer>/vars/<i>, optimizer/vars/<i>), Adam's state included."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for index, (shape, dtype) in enumerate(WEIGHTS):
            if index in skip:
                continue
            vars_ = f.require_group(f"layers/dense_{index // 2}/vars")
            vars_.attrs["name"] = f"dense_{index // 2}"
            vars_.create_dataset(str(index % 2), data=rng.normal(size=shape).astype(dtype), **dataset_options)
        if optimizer:
            vars_ = f.require_group("optimizer/vars")
            vars_.attrs["name"] = "adam"
            vars_.create_dataset("0", data=np.int64(3))
            vars_.create_dataset("1", data=np.float32(1e-3))
            for index, (shape, dtype) in enumerate(WEIGHTS * 2):
                vars_.create_dataset(str(index + 2), data=np.zeros(shape, dtype))
    return path


@pytest.fixture
def no_data_reads(monkeypatch):
    """Reading a dataset's data fails the test: the check looks at headers only."""

    def read(*args, **kwargs):
        raise AssertionError("read dataset data")

    monkeypatch.setattr(h5py.Dataset, "__getitem__", read)
    monkeypatch.setattr(h5py.Dataset, "read_direct", read)


def refused(path, match):
    with pytest.raises(AssertionError, match=match) as info:
        check_weights_file(path, WEIGHTS)
    assert "not the given model's weights" in str(info.value) and "model.save_weights" in str(info.value)


def test_the_model_s_weights_and_its_optimizer_state_pass(tmp_path, no_data_reads):
    check_weights_file(keras_like(tmp_path / "a.h5"), WEIGHTS)
    check_weights_file(keras_like(tmp_path / "b.h5", optimizer=False), WEIGHTS)
    check_weights_file(keras_like(tmp_path / "c.h5", compression="gzip", chunks=True), WEIGHTS)


def test_a_huge_declared_dataset_is_refused_without_reading_it(tmp_path, no_data_reads):
    path = keras_like(tmp_path / "w.h5")
    with h5py.File(path, "a") as f:
        f.create_dataset("layers/dense_1/vars/2", shape=(10**6, 10**6), dtype="f4", chunks=(1000, 1000))
    refused(path, r"unexpected weights of shape \(1000000, 1000000\)")


def test_huge_optimizer_state_is_refused(tmp_path, no_data_reads):
    path = keras_like(tmp_path / "w.h5")
    with h5py.File(path, "a") as f:
        f.create_dataset("optimizer/vars/99", shape=(10**6, 10**6), dtype="f4", chunks=(1000, 1000))
    refused(path, "optimizer state that does not belong to the model")
    path = keras_like(tmp_path / "many.h5")
    with h5py.File(path, "a") as f:  # each slot shaped like a weight, but more of them than any optimizer keeps
        for index in range(10):
            f.create_dataset(f"optimizer/vars/{100 + index}", shape=(4, 3), dtype="f4")
    refused(path, "optimizer state that does not belong to the model")


def test_the_huge_file_is_refused_in_little_memory(tmp_path):
    path = keras_like(tmp_path / "w.h5")
    with h5py.File(path, "a") as f:
        f.create_dataset("layers/dense_1/vars/2", shape=(10**6, 10**6), dtype="f4", chunks=(1000, 1000))
    script = (
        f"import resource, sys; resource.setrlimit(resource.RLIMIT_AS, ({600 << 20}, {600 << 20}))\n"
        "from autograder.grading.weights_check import check_weights_file\n"
        f"try: check_weights_file(sys.argv[1], {WEIGHTS!r})\n"
        "except AssertionError as exc: print(exc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=KIT_ROOT,
        env={"PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "unexpected weights of shape (1000000, 1000000)" in proc.stdout


def test_a_wrong_shape_or_a_missing_weight_is_refused(tmp_path, no_data_reads):
    path = keras_like(tmp_path / "w.h5")
    with h5py.File(path, "a") as f:
        del f["layers/dense_0/vars/0"]
        f.create_dataset("layers/dense_0/vars/0", shape=(4, 4), dtype="f4")
    refused(path, r"unexpected weights of shape \(4, 4\), missing weights of shape \(4, 3\)")
    refused(keras_like(tmp_path / "m.h5", skip=(3,)), r"missing weights of shape \(1,\)")
    path = keras_like(tmp_path / "d.h5")
    with h5py.File(path, "a") as f:
        del f["layers/dense_1/vars/1"]
        f.create_dataset("layers/dense_1/vars/1", shape=(1,), dtype="f8")
    refused(path, "unexpected weights")


def test_data_kept_elsewhere_is_refused(tmp_path, no_data_reads):
    (tmp_path / "raw.bin").write_bytes(b"\0" * 64)
    path = keras_like(tmp_path / "external.h5")
    with h5py.File(path, "a") as f:
        del f["layers/dense_0/vars/1"]
        f.create_dataset("layers/dense_0/vars/1", shape=(3,), dtype="f4", external=[(str(tmp_path / "raw.bin"), 0, 12)])
    refused(path, "keeps its data in another file")

    path = keras_like(tmp_path / "link.h5")
    keras_like(tmp_path / "other.h5")
    with h5py.File(path, "a") as f:
        del f["layers/dense_0/vars/1"]
        f["layers/dense_0/vars/1"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "/layers/dense_0/vars/1")
    refused(path, "a link to elsewhere")

    path = keras_like(tmp_path / "virtual.h5")
    with h5py.File(path, "a") as f:
        del f["layers/dense_0/vars/1"]
        layout = h5py.VirtualLayout(shape=(3,), dtype="f4")
        layout[:] = h5py.VirtualSource(str(tmp_path / "other.h5"), "layers/dense_0/vars/1", shape=(3,))
        f["layers/dense_0/vars"].create_virtual_dataset("1", layout)
    refused(path, "keeps its data in another file")


def test_other_tricks_of_the_headers_are_refused(tmp_path, no_data_reads, monkeypatch):
    cases = {
        "can grow": lambda f: f["layers/dense_0/vars"].create_dataset("1", shape=(3,), maxshape=(None,), dtype="f4"),
        "unusual HDF5 filter": lambda f: f["layers/dense_0/vars"].create_dataset(
            "1", shape=(3,), dtype="f4", compression="lzf"
        ),
        "does not hold numbers": lambda f: f["layers/dense_0/vars"].create_dataset("1", shape=(3,), dtype="S4"),
        "a large attribute": lambda f: f["layers/dense_0/vars/0"].attrs.create("x", np.zeros(4096, "u1")),
        "attributes on": lambda f: [f["layers"].attrs.create(f"a{i}", 1) for i in range(20)],
    }
    for why, change in cases.items():
        path = keras_like(tmp_path / f"{len(why)}.h5", skip=() if why.startswith("a") else (1,))
        with h5py.File(path, "a") as f:
            change(f)
        refused(path, why)
    path = keras_like(tmp_path / "objects.h5")
    with h5py.File(path, "a") as f:
        group = f.create_group("clutter")
        for index in range(weights_check.MAX_OBJECTS + 1):
            group.create_group(str(index))
    refused(path, "more than 2000 objects")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5" * 100)
    refused(tmp_path / "junk.h5", "not a readable HDF5 file")
    monkeypatch.setattr(weights_check, "MAX_WEIGHTS_BYTES", 100)
    refused(keras_like(tmp_path / "big.h5"), "larger than")


def test_the_reevaluation_checks_the_file_before_keras_reads_it(tmp_path, no_data_reads):
    """``reevaluate_weights`` refuses before the model's ``load_weights`` is called."""
    from autograder.grading.reevaluate import reevaluate_weights

    class Variable:
        def __init__(self, shape, dtype):
            self.shape, self.dtype = shape, dtype

    class Model:
        weights = [Variable(*w) for w in WEIGHTS[1:]]

        def load_weights(self, path):
            raise RuntimeError("Keras read the file")

    with pytest.raises(AssertionError, match=r"unexpected weights of shape \(4, 3\)"):
        reevaluate_weights({}, keras_like(tmp_path / "w.h5"), {"keras": None, "model": Model()})
