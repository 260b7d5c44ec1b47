"""The evidence: what the capture cells record in the student's kernel, and how the grader reads it.

The capture (``sandbox/payload/capture.py``) is told where to write and what
to call ``plot_history`` with by ``capture_settings()``, passed through the
sandbox. Evidence crosses the sandbox boundary as JSON (validated against a
schema, size-capped) and an HDF5 weights file that Keras reads as arrays
only; no code from the sandbox is imported, executed or unpickled.

Besides the final evidence, the guard writes a **checkpoint** after each of
the student's cells: the same files, in the same schema, holding only what
it has recorded so far (``"checkpoint": true``; a part not yet recorded is
None, with ``NOT_RECORDED`` as its error). The runner moves them to
``CHECKPOINT_DIR``. When a run ends early (a limit, a dead kernel) and left no
final evidence, the checks run on the checkpoint (``checkpoint_evidence``), so
the work done before the stop is graded; each check whose part was not
recorded fails naming the stop (``not_checked``).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from ..errors import EvidenceMissing

EVIDENCE_DIR = "evidence"  # in the submission's scratch folder
EVIDENCE_FILE = "evidence.json"
WEIGHTS_FILE = "model.weights.h5"
MAX_EVIDENCE_BYTES = 5_000_000
MAX_WEIGHTS_BYTES = 50_000_000
EVIDENCE_FILES = {EVIDENCE_FILE: MAX_EVIDENCE_BYTES, WEIGHTS_FILE: MAX_WEIGHTS_BYTES}
CHECKPOINT_DIR = "checkpoint/evidence"  # in the scratch folder: the runner's copy of the last checkpoint
NOT_RECORDED = "not recorded before the run ended"  # a checkpoint's error for a part it has not recorded yet
# What each part of the evidence stands for, in a check's message about a run that ended early.
PART_NAMES = {
    "compile": "model.compile",
    "history": "history = model.fit(...)",
    "weights": "a trained model (model.fit)",
    "plots": "plot_history",
}

# A history the grader knows: the capture calls the student's plot_history with it, so that plotted
# values can be compared exactly (the plot checks read it from their context).
PLOT_HISTORY = {
    "accuracy": {"accuracy": [0.861, 0.934, 0.957], "val_accuracy": [0.902, 0.941, 0.936]},
    "auc": {"auc": [0.713, 0.958, 0.989], "val_auc": [0.884, 0.973, 0.969]},
    "loss": {"loss": [0.412, 0.187, 0.104], "val_loss": [0.298, 0.161, 0.175]},
}


def capture_settings() -> dict:
    """What the capture cells are told (JSON): where the evidence goes and the history to plot."""
    return {
        "evidence_dir": EVIDENCE_DIR,
        "evidence_file": EVIDENCE_FILE,
        "weights_file": WEIGHTS_FILE,
        "plot_history": PLOT_HISTORY,
    }


def sandbox_files() -> dict[str, int]:
    """The evidence files the sandbox brings back (path in scratch -> largest size accepted)."""
    return {f"{EVIDENCE_DIR}/{name}": size for name, size in EVIDENCE_FILES.items()}


def checkpoint_files() -> dict[str, int]:
    """The checkpoint files the sandbox brings back (path in scratch -> largest size accepted)."""
    return {f"{CHECKPOINT_DIR}/{name}": size for name, size in EVIDENCE_FILES.items()}


_number_list = {"type": "array", "items": {"type": "number"}, "maxItems": 10_000}
_described = {
    "type": ["object", "null"],
    "properties": {"kind": {"enum": ["str", "object"]}, "path": {"type": "string"}, "verified": {"type": "boolean"}},
}
_texts = {"type": ["array", "null"], "items": {"type": "string"}}
SCHEMA = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {"type": "object", "additionalProperties": {"type": "string"}},
        "guard": {"type": "boolean"},
        "checkpoint": {"type": "boolean"},  # written by the guard's checkpoint, not the final capture
        "compile": {
            "type": ["object", "null"],
            "properties": {
                "compiled": {"type": "boolean"},
                "recorded": {"type": "boolean"},
                "compile_calls": {"type": "integer"},
                "optimizer": {
                    "type": ["object", "null"],
                    "properties": {
                        "is_adam": {"type": "boolean"},
                        "learning_rate": {"type": "number"},
                        "iterations": {"type": "integer"},
                        "path": {"type": "string"},
                        "verified": {"type": "boolean"},
                    },
                },
                "loss": _described,
                "metrics": {"type": "array", "items": _described, "maxItems": 100},
            },
        },
        "history": {
            "type": ["object", "null"],
            "properties": {
                "class": {"type": "string"},
                "is_history": {"type": "boolean"},
                "is_model_history": {"type": "boolean"},
                "recorded": {"type": "boolean"},
                "fit_calls": {"type": "array", "maxItems": 10_000, "items": {"type": "object"}},
                "epoch": {"type": "array", "items": {"type": "integer"}, "maxItems": 10_000},
                "history": {"type": ["object", "null"], "additionalProperties": _number_list},
                "steps_per_epoch": {"type": ["integer", "null"]},
            },
        },
        "weights": {"type": ["string", "null"]},
        "plots": {
            "type": ["object", "null"],
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "error": {"type": ["string", "null"]},
                    "figures": {
                        "type": "array",
                        "maxItems": 100,
                        "items": {
                            "type": "object",
                            "properties": {
                                "reused": {"type": "boolean"},
                                "legend": _texts,
                                "axes": {
                                    "type": "array",
                                    "maxItems": 100,
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "xlabel": {"type": "string"},
                                            "ylabel": {"type": "string"},
                                            "title": {"type": "string"},
                                            "legend": _texts,
                                            "lines": {
                                                "type": "array",
                                                "maxItems": 100,
                                                "items": {
                                                    "type": "object",
                                                    "properties": {
                                                        "label": {"type": "string"},
                                                        "legend": {"type": ["string", "null"]},
                                                        "x": _number_list,
                                                        "y": _number_list,
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def load_evidence(evidence_dir: Path) -> dict:
    path = Path(evidence_dir) / EVIDENCE_FILE
    if not path.is_file() or path.is_symlink():
        raise EvidenceMissing("the notebook did not run to its end, so nothing could be checked")
    if path.stat().st_size > MAX_EVIDENCE_BYTES:
        raise EvidenceMissing("the recorded evidence is too large to be genuine")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        jsonschema.validate(data, SCHEMA)
    except (ValueError, jsonschema.ValidationError) as exc:
        raise EvidenceMissing(f"the recorded evidence is malformed ({str(exc)[:200]})") from None
    return data


def weights_file(evidence_dir: Path, evidence: dict) -> Path:
    """The weights file, if it is a plain file of sane size inside evidence_dir."""
    name = evidence.get("weights")
    if not name or "/" in name or name.startswith("."):
        raise EvidenceMissing(f"no trained weights were saved ({evidence['errors'].get('weights', 'no model')})")
    path = Path(evidence_dir) / name
    if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise EvidenceMissing("the saved weights are missing or not a plain file")
    return path


def checkpoint_evidence(files: dict[str, bytes]) -> dict[str, bytes] | None:
    """The checkpoint's files worth checking: a valid checkpoint evidence.json, and the weights only if it
    names them (a stale file of an earlier model is left out); None if there is no usable checkpoint."""
    data = files.get(EVIDENCE_FILE)
    if data is None or len(data) > MAX_EVIDENCE_BYTES:
        return None
    try:
        evidence = json.loads(data.decode("utf-8"))
        jsonschema.validate(evidence, SCHEMA)
    except (ValueError, jsonschema.ValidationError):
        return None
    if evidence.get("checkpoint") is not True:
        return None
    kept = {EVIDENCE_FILE: data}
    if evidence.get("weights") == WEIGHTS_FILE and WEIGHTS_FILE in files:
        kept[WEIGHTS_FILE] = files[WEIGHTS_FILE]
    return kept


def not_recorded(evidence: dict, part: str) -> bool:
    """Whether a checkpoint's ``part`` is missing because the run ended before the guard recorded it."""
    return evidence.get(part) is None and evidence.get("errors", {}).get(part) == NOT_RECORDED


def run_stop(run_status: str, run_message: str) -> str:
    """How the run ended, as the student reads it: "Your notebook used too much memory: used more than ..."."""
    from ..model import Status

    try:
        said = Status(run_status).student or str(run_status)
    except ValueError:
        said = str(run_status)
    return f"{said}: {run_message}" if run_message else said


def not_checked(run_status: str, run_message: str, part: str) -> str:
    """A check's message when the run ended before ``part`` was recorded."""
    return (
        f"not checked: the run ended early ({run_stop(run_status, run_message)}) "
        f"before {PART_NAMES.get(part, part)} was recorded"
    )
