"""Where graded results live between the grading run and the gradebook.

``ResultStore`` keeps each sandbox-and-checks result under a key that names
exactly what ran (cell sources, student files, settings, data, kit code), so
a batch that is killed and restarted re-runs nothing it already finished,
and a changed submission is graded again. Writes are atomic (temp + rename).
Per-student summaries (checks, metrics, status; no notebook) feed exports
and the class report.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


# Figures the checks record (``record_property``) that the class report plots.
METRIC_NAMES = {"reported_val_auc": "val_auc_reported", "val_auc": "val_auc_regraded", "hidden_auc": "hidden_auc",
                "honesty_gap": "honesty_gap"}


def check_metrics(checks: list[dict]) -> dict:
    """Reported and re-evaluated model figures, gathered from the checks' values."""
    metrics = {}
    for check in checks:
        for name, value in (check.get("values") or {}).items():
            if name in METRIC_NAMES and isinstance(value, (int, float)):
                metrics.setdefault(METRIC_NAMES[name], float(value))
    return metrics


def cell_errors(executed_json: str | None) -> list[dict]:
    """Cells of the executed notebook that raised: which cell, which exception, test cell or not."""
    if not executed_json:
        return []
    try:
        cells = json.loads(executed_json).get("cells", [])
    except (ValueError, AttributeError):
        return []
    found = []
    for index, cell in enumerate(cells):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                found.append({"cell": meta.get("grade_id") or f"cell {index + 1}", "ename": str(output.get("ename"))[:100],
                              "test": bool(meta.get("grade") and not meta.get("solution"))})
                break
    return found[:50]


def summarize(result: dict, key: str) -> dict:
    checks = result["checks"]
    return {
        "key": key,
        "status": result["status"],
        "message": result["message"],
        "sandboxed": result["sandboxed"],
        "seconds": result["seconds"],
        "execute_seconds": result["execute_seconds"],
        "check_seconds": result["check_seconds"],
        "peak_rss_mb": result["peak_rss_mb"],
        "score": sum(c["score"] for c in checks),
        "max_score": sum(c["points"] for c in checks),
        "checks": checks,
        "metrics": check_metrics(checks),
        "cell_errors": cell_errors(result.get("executed")),
    }


class ResultStore:
    def __init__(self, course_root: Path):
        self.root = Path(course_root) / ".kit"

    def _path(self, key: str) -> Path:
        return self.root / "store" / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # a torn file from an older crash: grade again
            return None

    def put(self, key: str, result: dict) -> None:
        write_json_atomic(self._path(key), result)

    def discard(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def summary_path(self, assignment: str, student: str) -> Path:
        return self.root / "results" / assignment / f"{student}.json"

    def write_summary(self, assignment: str, student: str, summary: dict) -> None:
        write_json_atomic(self.summary_path(assignment, student), summary)

    def summaries(self, assignment: str) -> dict[str, dict]:
        folder = self.root / "results" / assignment
        return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}
