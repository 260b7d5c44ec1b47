"""Calibrate the grading thresholds from seeded runs of the reference solution.

``spamkit calibrate [--runs N] [--margin M] [--json OUT]`` (``api.calibrate``)
runs the instructor's source notebook (solutions in place) through the same
path a submission takes (the course's GradingJob + ``grade_notebook``:
sandbox, capture, hidden checks) once per training seed, reads what the
checks measured (the history's last val AUC, the grader's own val AUC of the
saved weights, the hidden test AUC, their honesty gap) and recommends the
thresholds to put in course_config.py: the lowest value over the seeds minus
a margin, so that the reference solution passes under any seed.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..grading.engine import grade_notebook
from ..model import Status
from ..settings import Grading

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
            cell.source = "\n".join(
                line
                for line in cell.source.splitlines()
                if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")
            )
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(nb)


def run_seed(job, nb_json: str, notebook_name: str, seed: int) -> dict:
    """Grade the reference once under one training seed; the figures its checks recorded."""
    seeded = dataclasses.replace(job, lab={**job.lab, "seed": seed})
    result = grade_notebook(nb_json, {}, seeded, notebook_name)
    figures: dict = {}
    for check in result.checks:
        figures.update(check.values or {})
    return {
        "seed": seed,
        "status": result.status,
        "seconds": result.seconds,
        "failed": [c.id for c in result.checks if not c.passed],
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
    return {
        "n": len(values),
        "min": min(values),
        "p5": percentile(values, 5),
        "median": statistics.median(values),
        "max": max(values),
    }


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


@dataclass
class Calibration:
    """What a calibration found: every run, the distributions, and the thresholds to use."""

    seeds: list[int]
    runs: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    recommended: dict = field(default_factory=dict)
    current: dict = field(default_factory=dict)
    margin: float = 0.0

    @property
    def unfinished(self) -> list[int]:
        """Seeds whose run did not end well: the figures are not to be trusted until they do."""
        return [r["seed"] for r in self.runs if r["status"] != Status.OK]

    def failing_now(self, grading: Grading) -> list[int]:
        """Seeds under which the reference solution fails the current thresholds."""
        return [
            r["seed"]
            for r in self.runs
            if (r["val_auc"] or 0) < grading.val_auc_threshold or (r["hidden_auc"] or 0) < grading.hidden_auc_threshold
        ]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def calibrate(
    course,
    runs: int = 20,
    first_seed: int | None = None,
    margin: float = 0.02,
    tolerance_floor: float = 0.005,
    on_run: Callable[[dict], None] | None = None,
) -> Calibration:
    """Grade the reference solution under ``runs`` training seeds (from ``first_seed``, default the
    grader's seed) and recommend thresholds; ``on_run`` sees each run as it finishes."""
    grading = Grading(config=course.config)
    job = course.job()
    nb_json = reference_notebook(course.folder("source") / f"{course.notebook}.ipynb")
    first = course.lab.seed if first_seed is None else first_seed
    found = Calibration(
        seeds=list(range(first, first + runs)),
        margin=margin,
        current={
            "val_auc_threshold": grading.val_auc_threshold,
            "hidden_auc_threshold": grading.hidden_auc_threshold,
            "honesty_tolerance": grading.honesty_tolerance,
        },
    )
    for seed in found.seeds:
        run = run_seed(job, nb_json, course.notebook, seed)
        found.runs.append(run)
        if on_run is not None:
            on_run(run)
    found.stats = {name: distribution(found.runs, name) for name in FIGURES}
    found.recommended = recommend(found.stats, margin, tolerance_floor)
    return found
