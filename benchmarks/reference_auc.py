"""How good is the reference solution after its one epoch, seed by seed?

Executes the SOURCE notebook (the reference solution, as written: epochs = 1)
with nbclient once per seed, in a fresh kernel each time, with the seed in
``SPAM_LAB_SEED`` (read by the notebook's setup cell). One extra cell appended
to the notebook prints ``history.history`` as JSON. Cell times come from
nbclient's ``record_timing`` metadata: the ``setup`` cell (TensorFlow import
and seeding) and the ``fit`` cell (``model.fit``, divided by the epochs run).

By default the kernel gets the grader's thread limit (``Sandbox.cpu_threads``
of course_config.py), as in the sandbox; ``--threads 0`` leaves TensorFlow's
default. Run from the repo root:

    python benchmarks/reference_auc.py               # 20 seeds, 0..19
    python benchmarks/reference_auc.py --seeds 5 --first-seed 40 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell
from rich.console import Console
from rich.table import Table

from autograder.settings import Lab, Sandbox, load_course_config

REPO = Path(__file__).resolve().parent.parent
MARK = "KIT-BENCHMARK-HISTORY "
REPORT_CELL = (
    f"import json\nprint({MARK!r} + json.dumps({{k: [float(v) for v in vs] for k, vs in history.history.items()}}))"
)


def cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    return (
        datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
    ).total_seconds()


def run_seed(folder: Path, notebook: str, seed: int, timeout: int) -> dict:
    nb = nbformat.read(folder / notebook, as_version=4)
    nb.cells.append(new_code_cell(REPORT_CELL))
    os.environ["SPAM_LAB_SEED"] = str(seed)  # the kernel inherits this process's environment
    start = time.monotonic()
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            record_timing=True,
            resources={"metadata": {"path": str(folder)}},
        )
        # The kernel process's own logs (TensorFlow start-up lines), not cell outputs.
        client.execute(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except CellExecutionError as exc:
        return {"seed": seed, "error": str(exc).strip().splitlines()[-1]}
    wall = time.monotonic() - start
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    history = json.loads(printed.split(MARK, 1)[1])
    epochs = len(history["loss"])
    return {
        "seed": seed,
        "epochs": epochs,
        "history": history,
        "val_auc": history["val_auc"][-1],
        "fit_seconds_per_epoch": cell_seconds(by_id["fit"]) / epochs,
        "setup_seconds": cell_seconds(by_id["setup"]),
        "notebook_seconds": wall,
    }


def main() -> None:
    config = load_course_config(REPO)
    lab, sandbox = Lab(config=config), Sandbox(config=config)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds run first-seed, first-seed+1, ...")
    parser.add_argument("--threshold", type=float, default=0.97, help="val AUC to count (default 0.97)")
    parser.add_argument(
        "--threads",
        type=int,
        default=sandbox.cpu_threads,
        help=f"TensorFlow/BLAS threads; 0 = library default (default: the grader's {sandbox.cpu_threads})",
    )
    parser.add_argument("--timeout", type=int, default=sandbox.cell_timeout, help="seconds per cell")
    parser.add_argument("--json", type=Path, help="also write the per-seed results here")
    args = parser.parse_args()

    data_dir = lab.data_dir or os.environ.get("SPAM_LAB_DATA_DIR") or str(REPO.parent / "shared" / "data")
    os.environ.update(
        {
            "SPAM_LAB_DATA_DIR": data_dir,
            "SPAM_LAB_DATASET": lab.dataset,
            "SPAM_LAB_SPLIT_SEED": str(lab.split_seed),
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "MPLBACKEND": "agg",
        }
    )
    os.environ.pop("SPAM_LAB_SPLITS", None)
    if args.threads:
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[name] = str(args.threads)

    console = Console(width=150)
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    console.print(
        f"Reference solution of {lab.assignment} ({lab.dataset}, split seed {lab.split_seed}), "
        f"seeds {seeds[0]}..{seeds[-1]}, threads {args.threads or 'default'}, data {data_dir}"
    )
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / lab.assignment
        shutil.copytree(REPO / "source" / lab.assignment, folder, ignore=shutil.ignore_patterns("__pycache__"))
        for seed in seeds:
            result = run_seed(folder, f"{lab.notebook}.ipynb", seed, args.timeout)
            results.append(result)
            if "error" in result:
                console.print(f"seed {seed}: [red]failed[/red] {result['error']}")
            else:
                console.print(
                    f"seed {seed}: val_auc {result['val_auc']:.4f}, fit {result['fit_seconds_per_epoch']:.1f} s/epoch, "
                    f"notebook {result['notebook_seconds']:.1f} s"
                )

    table = Table(title=f"Reference solution, last val_auc per seed (threshold {args.threshold})")
    for column in (
        "seed",
        "epochs",
        "val_auc",
        "val_accuracy",
        "val_loss",
        "train auc",
        f">= {args.threshold}",
        "fit s/epoch",
        "setup s",
        "notebook s",
    ):
        table.add_column(column, justify="right")
    done = [r for r in results if "error" not in r]
    for r in results:
        if "error" in r:
            table.add_row(str(r["seed"]), "-", "error", "", "", "", "no", "", "", "")
            continue
        h = r["history"]
        table.add_row(
            str(r["seed"]),
            str(r["epochs"]),
            f"{r['val_auc']:.4f}",
            f"{h['val_accuracy'][-1]:.4f}",
            f"{h['val_loss'][-1]:.4f}",
            f"{h['auc'][-1]:.4f}",
            "yes" if r["val_auc"] >= args.threshold else "NO",
            f"{r['fit_seconds_per_epoch']:.2f}",
            f"{r['setup_seconds']:.2f}",
            f"{r['notebook_seconds']:.1f}",
        )
    console.print(table)

    aucs = sorted(r["val_auc"] for r in done)
    if aucs:
        console.print(f"val_auc min {aucs[0]:.4f}  median {statistics.median(aucs):.4f}  max {aucs[-1]:.4f}")
        console.print(
            f"seeds with val_auc >= {args.threshold}: {sum(a >= args.threshold for a in aucs)} of {len(results)}"
            + (f" ({len(results) - len(done)} failed)" if len(done) < len(results) else "")
        )
        console.print(f"mean fit seconds per epoch: {statistics.mean(r['fit_seconds_per_epoch'] for r in done):.2f}")
        console.print(
            f"mean TensorFlow import/setup seconds (setup cell): {statistics.mean(r['setup_seconds'] for r in done):.2f}"
        )
        console.print(
            f"mean notebook seconds (kernel start to last cell): {statistics.mean(r['notebook_seconds'] for r in done):.1f}"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"threads": args.threads, "threshold": args.threshold, "results": results}, indent=1)
        )


if __name__ == "__main__":
    main()
