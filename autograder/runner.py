"""Execute one notebook and capture its evidence: the program the sandbox runs.

Usage: python runner.py IN.ipynb OUT.ipynb CELL_TIMEOUT CAPTURE.py

It uses nbgrader's own Execute preprocessor, so a cell behaves exactly as in
plain ``nbgrader autograde``, then runs the capture cell in the same kernel.
Only this file and capture.py are visible inside the sandbox; they hold no
checks. The outcome is written next to OUT as ``run.json``.
"""

import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import DeadKernelError
from nbformat.v4 import new_code_cell
from nbgrader.preprocessors import Execute

CAPTURE_TAG = "kit-evidence-capture"


def main(in_path, out_path, cell_timeout, capture_path):
    nb = nbformat.read(in_path, as_version=4)
    capture = new_code_cell(Path(capture_path).read_text(encoding="utf-8"))
    capture.metadata["tags"] = [CAPTURE_TAG]
    nb.cells.append(capture)
    executor = Execute(timeout=int(cell_timeout), kernel_name="python3")
    outcome = {"status": "ok", "message": ""}
    start = time.monotonic()
    try:
        executor.preprocess(nb, {"metadata": {"path": str(Path(in_path).parent)}})
    except DeadKernelError as exc:
        outcome = {"status": "kernel_died", "message": f"the Python kernel died: {exc}"}
    except Exception as exc:  # noqa: BLE001 - reported to the grader as data
        outcome = {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
    outcome["seconds"] = round(time.monotonic() - start, 3)
    capture_outputs = nb.cells[-1].get("outputs", []) if nb.cells[-1].metadata.get("tags") == [CAPTURE_TAG] else []
    outcome["capture_errors"] = [o.get("evalue", "") for o in capture_outputs if o.get("output_type") == "error"]
    nb.cells = [c for c in nb.cells if c.metadata.get("tags") != [CAPTURE_TAG]]
    nbformat.write(nb, out_path)
    Path(out_path).with_name("run.json").write_text(json.dumps(outcome), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:5])
