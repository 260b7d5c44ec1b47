"""A student's weights file, checked before Keras (libhdf5) reads any of its data.

The file is made in the student's sandbox, so its bytes are the student's to
choose: a dataset can declare terabytes in a few bytes of header (chunked,
never written: libhdf5 allocates what it declares on reading), point to
other files (external storage, virtual datasets, external links), or ask
for a filter plugin. ``check_weights_file`` walks the file's headers with
h5py, never its data, and lets only what ``Model.save_weights`` writes of
the given model through: the model's own variables, each with its shape and
dtype, and the optimizer's state (a few scalars, and per weight at most
three slots of its shape: Adam's moments, AMSGrad's maxima).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import h5py
import numpy as np

from .evidence import MAX_WEIGHTS_BYTES

MAX_OBJECTS = 2_000  # groups and datasets (the lab's model, trained with Adam: ~130)
MAX_ATTRIBUTES = 16  # per object (Keras writes a name)
MAX_ATTRIBUTE_BYTES = 1_024  # each
MAX_OPTIMIZER_SCALARS = 8  # Adam: iterations and learning rate
SLOTS_PER_WEIGHT = 3
SAFE_FILTERS = {h5py.h5z.FILTER_DEFLATE, h5py.h5z.FILTER_SHUFFLE, h5py.h5z.FILTER_FLETCHER32}
ADVICE = "save the weights of the model built by build_model() with model.save_weights"


def refuse(why: str) -> AssertionError:
    return AssertionError(f"the trained weights file is not the given model's weights ({why}); {ADVICE}")


def check_weights_file(path: Path, weights: list[tuple[tuple, str]]) -> None:
    """Raise AssertionError (the student reads it) unless ``path`` holds just ``weights`` (shape, dtype) and an
    optimizer's state for them, by the declared shapes and types of its datasets (no data is read)."""
    if Path(path).stat().st_size > MAX_WEIGHTS_BYTES:
        raise refuse(f"larger than {MAX_WEIGHTS_BYTES // 10**6} MB")
    try:
        with h5py.File(path, "r") as f:
            model, optimizer = _datasets(f)
    except AssertionError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises many kinds on a broken file
        raise refuse(f"not a readable HDF5 file: {type(exc).__name__}") from None
    expected = Counter((tuple(shape), np.dtype(dtype).str) for shape, dtype in weights)
    found = Counter(model)
    if found != expected:
        extra, missing = found - expected, expected - found
        raise refuse(
            ", ".join(
                [f"unexpected weights of shape {_shapes(extra)}"] * bool(extra)
                + [f"missing weights of shape {_shapes(missing)}"] * bool(missing)
            )
        )
    shapes = set(expected)
    scalars = [key for key in optimizer if key[0] == ()]
    slots = [key for key in optimizer if key[0] != ()]
    if (
        len(scalars) > MAX_OPTIMIZER_SCALARS
        or len(slots) > SLOTS_PER_WEIGHT * len(weights)
        or any(key not in shapes for key in slots)
    ):
        raise refuse("optimizer state that does not belong to the model")
    model_bytes = sum(_bytes(key) for key in expected.elements())
    if (
        sum(_bytes(key) for key in model + optimizer)
        > (1 + SLOTS_PER_WEIGHT) * model_bytes + 64 * MAX_OPTIMIZER_SCALARS
    ):
        raise refuse("more data than the model and its optimizer hold")


def _datasets(f: h5py.File) -> tuple[list, list]:
    """(shape, dtype) of each dataset: the model's, and those under ``optimizer``; refuses anything else."""
    model, optimizer, seen = [], [], 0
    stack = [f]
    while stack:
        group = stack.pop()
        seen += len(group)  # counted before its links are listed: a group of a million links is refused at once
        if seen > MAX_OBJECTS:
            raise refuse(f"more than {MAX_OBJECTS} objects")
        _check_attributes(group)
        for name in group:
            link = group.get(name, getlink=True)
            if not isinstance(link, h5py.HardLink):
                raise refuse(f"a link to elsewhere: {group.name}/{name}")
            obj = group[name]
            if isinstance(obj, h5py.Group):
                stack.append(obj)
            elif isinstance(obj, h5py.Dataset):
                _check_attributes(obj)
                key = _declared(obj)
                (optimizer if obj.name.startswith("/optimizer/") else model).append(key)
            else:
                raise refuse(f"an object that is not a weight: {obj.name}")
    return model, optimizer


def _declared(dataset: h5py.Dataset) -> tuple[tuple, str]:
    """A dataset's (shape, dtype), once its data is known to live in this file, in its declared size."""
    if dataset.is_virtual or dataset.external:
        raise refuse(f"{dataset.name} keeps its data in another file")
    if dataset.maxshape != dataset.shape:
        raise refuse(f"{dataset.name} can grow")
    if dataset.chunks is not None and any(c > max(s, 1) for c, s in zip(dataset.chunks, dataset.shape)):
        raise refuse(f"{dataset.name} has chunks larger than itself")
    pipeline = dataset.id.get_create_plist()
    if any(pipeline.get_filter(i)[0] not in SAFE_FILTERS for i in range(pipeline.get_nfilters())):
        raise refuse(f"{dataset.name} needs an unusual HDF5 filter")
    if dataset.dtype.kind not in "fiu":
        raise refuse(f"{dataset.name} does not hold numbers")
    return tuple(dataset.shape), dataset.dtype.str


def _check_attributes(obj) -> None:
    names = list(obj.attrs) if len(obj.attrs) <= MAX_ATTRIBUTES else None
    if names is None:
        raise refuse(f"more than {MAX_ATTRIBUTES} attributes on {obj.name}")
    for name in names:
        if obj.attrs.get_id(name).get_storage_size() > MAX_ATTRIBUTE_BYTES:
            raise refuse(f"a large attribute on {obj.name}")


def _bytes(key: tuple[tuple, str]) -> int:
    shape, dtype = key
    return int(np.prod(shape, dtype=object)) * np.dtype(dtype).itemsize


def _shapes(keys: Counter) -> str:
    shapes = sorted(str(shape) for shape, _ in keys.elements())
    return " ".join(shapes[:3]) + (f" and {len(shapes) - 3} more" if len(shapes) > 3 else "")
