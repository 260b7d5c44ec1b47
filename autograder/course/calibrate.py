"""Calibrate the grading thresholds from seeded runs of the reference solution.

    spamkit calibrate [--course ROOT] [--runs N] [--margin M] [--json OUT] [--Class.trait=value ...]

Runs the instructor's source notebook (solutions in place) through the same
path a submission takes (``engine.make_job`` + ``grade_notebook``: sandbox,
capture, hidden checks) once per training seed, reads what the checks
measured (the history's last val AUC, the grader's own val AUC of the saved
weights, the hidden test AUC, their honesty gap) and prints the distribution
with the thresholds to put in course_config.py: the lowest value over the
seeds minus a margin, so that the reference solution passes under any seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path

import nbformat
from rich.console import Console
from rich.table import Table
from traitlets.config.loader import KVArgParseConfigLoader

from ..grading.engine import grade_notebook, make_job
from ..settings import Grading, Lab, load_course_config

FIGURES = {
    "reported_val_auc": "val_auc in the history",
    "val_auc": "grader's val AUC",
    "hidden_auc": "hidden test AUC",
    "honesty_gap": "|reported - grader's|",
}


def reference_notebook(source: Path) -> str:
    """The source notebook with its solutions in place, markers and outputs removed."""
    nb = nbformat.read(source, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(line for line in cell.source.splitlines()
                                    if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION"))
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(nb)


def run_seed(job, nb_json: str, notebook_name: str, seed: int) -> dict:
    """Grade the reference once under one training seed; the figures its checks recorded."""
    seeded = dataclasses.replace(job, lab={**job.lab, "seed": seed})
    result = grade_notebook(nb_json, {}, seeded, notebook_name)
    figures: dict = {}
    for check in result["checks"]:
        figures.update(check.get("values") or {})
    return {
        "seed": seed,
        "status": result["status"],
        "seconds": result["seconds"],
        "failed": [c["id"] for c in result["checks"] if not c["passed"]],
        **{name: figures.get(name) for name in FIGURES},
    }


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of a non-empty list."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def distribution(runs: list[dict], name: str) -> dict | None:
    values = [r[name] for r in runs if isinstance(r.get(name), (int, float)) and math.isfinite(r[name])]
    if not values:
        return None
    return {"n": len(values), "min": min(values), "p5": percentile(values, 5),
            "median": statistics.median(values), "max": max(values)}


def recommend(stats: dict, margin: float, tolerance_floor: float) -> dict:
    """Thresholds = lowest AUC over the seeds minus the margin (rounded down to 0.005);
    honesty tolerance = largest honest gap plus a floor (rounded up to 0.001)."""
    out = {}
    for key, figure in (("val_auc_threshold", "val_auc"), ("hidden_auc_threshold", "hidden_auc")):
        if stats.get(figure):
            out[key] = math.floor((stats[figure]["min"] - margin) * 200) / 200
    if stats.get("honesty_gap"):
        out["honesty_tolerance"] = math.ceil((stats["honesty_gap"]["max"] + tolerance_floor) * 1000) / 1000
    return out


def _parse(argv):
    parser = argparse.ArgumentParser(prog="spamkit calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=None,
                        help="course root holding course_config.py (default: current folder if it has one, else the kit)")
    parser.add_argument("--runs", "-n", type=int, default=20, help="number of training seeds (default 20)")
    parser.add_argument("--first-seed", type=int, default=None,
                        help="first seed; the others follow it (default: the grader's seed, Lab.seed)")
    parser.add_argument("--margin", type=float, default=0.02, help="subtracted from the lowest AUC (default 0.02)")
    parser.add_argument("--tolerance-floor", type=float, default=0.005,
                        help="added to the largest honest gap for Grading.honesty_tolerance (default 0.005)")
    parser.add_argument("--json", type=Path, default=None, help="also write every run and the summary here")
    return parser.parse_known_args(argv)


def _course_root(given: Path | None) -> Path:
    if given is not None:
        return given.resolve()
    if (Path.cwd() / "course_config.py").is_file():
        return Path.cwd()
    from ..settings import REPO_ROOT

    return REPO_ROOT


def main(argv: list[str] | None = None) -> int:
    args, overrides = _parse(sys.argv[1:] if argv is None else argv)
    console = Console(soft_wrap=True)
    root = _course_root(args.course)
    config = load_course_config(root)
    if overrides:  # e.g. --Lab.dataset=enron, as on nbgrader's command line
        config.merge(KVArgParseConfigLoader(argv=overrides).load_config())
    lab, grading = Lab(config=config), Grading(config=config)
    job = make_job(config, root)
    source = root / "source" / lab.assignment / f"{lab.notebook}.ipynb"
    nb_json = reference_notebook(source)
    first = lab.seed if args.first_seed is None else args.first_seed
    seeds = list(range(first, first + args.runs))
    console.print(f"Calibrating {lab.assignment} ({lab.dataset}) on {len(seeds)} seeds {seeds[0]}..{seeds[-1]}, "
                  f"sandbox {job.sandbox['mode']}; the grader's seed is {lab.seed}.")

    runs = []
    for seed in seeds:
        run = run_seed(job, nb_json, lab.notebook, seed)
        runs.append(run)
        shown = "  ".join(f"{k}={run[k]:.4f}" for k in FIGURES if isinstance(run[k], (int, float)))
        console.print(f"  seed {seed:>4}: {run['status']:<6} {run['seconds']:6.1f}s  {shown}"
                      + (f"  failed: {', '.join(run['failed'])}" if run["failed"] else ""), highlight=False)

    stats = {name: distribution(runs, name) for name in FIGURES}
    table = Table(title=f"Reference solution over {len(runs)} seeds")
    for column in ("figure", "n", "min", "p5", "median", "max"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    for name, label in FIGURES.items():
        s = stats[name]
        if s:
            table.add_row(label, str(s["n"]), *(f"{s[k]:.4f}" for k in ("min", "p5", "median", "max")))
    console.print(table)

    advice = recommend(stats, args.margin, args.tolerance_floor)
    seconds = [r["seconds"] for r in runs]
    console.print(f"Grading seconds per run: min {min(seconds):.1f}, median {statistics.median(seconds):.1f}, "
                  f"max {max(seconds):.1f}")
    not_ok = [r["seed"] for r in runs if r["status"] != "ok"]
    if not_ok:
        console.print(f"[red]Runs that did not finish: seeds {not_ok}; fix these before trusting the figures.[/red]")
    console.print("Put in course_config.py (current values in brackets):")
    current = {"val_auc_threshold": grading.val_auc_threshold, "hidden_auc_threshold": grading.hidden_auc_threshold,
               "honesty_tolerance": grading.honesty_tolerance}
    for key, value in advice.items():
        console.print(f"  c.Grading.{key} = {value:g}    [{current[key]:g}]", highlight=False)
    below = [r["seed"] for r in runs
             if (r["val_auc"] or 0) < grading.val_auc_threshold or (r["hidden_auc"] or 0) < grading.hidden_auc_threshold]
    if below:
        console.print(f"[red]Under the current thresholds the reference solution fails with seeds {below}.[/red]")
    if args.json:
        args.json.write_text(json.dumps({"seeds": seeds, "runs": runs, "stats": stats, "recommended": advice,
                                         "current": current, "margin": args.margin}, indent=1))
    return 0 if not not_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
