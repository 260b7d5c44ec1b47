"""Where graded results live between the grading run and the gradebook.

``ResultStore`` keeps each sandbox-and-checks result under a key that names
exactly what ran (cell sources, student files, settings, data, kit code), so
a batch that is killed and restarted re-runs nothing it already finished,
and a changed submission is graded again. Writes are atomic (temp + rename).
Beside each result lies the evidence its run left (evidence.json and the
trained weights), so one check can be run again later without re-running the
notebook. Per-student summaries (checks, metrics, status; no notebook) feed
exports and the class report.
"""

from __future__ import annotations

import json
import os
import shutil
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


def summarize(result: dict, key: str, submission: str) -> dict:
    checks = result["checks"]
    return {
        "key": key,
        "submission": submission,
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
        "rechecked": result.get("rechecked", []),
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
        """Store a result; its ``evidence`` files (name -> bytes) go to a folder beside it."""
        evidence = result.get("evidence")
        if evidence is not None:
            self._put_evidence(key, evidence)
        record = {k: v for k, v in result.items() if k != "evidence"}
        record["evidence_kept"] = sorted(evidence) if evidence is not None else None
        write_json_atomic(self._path(key), record)

    def _evidence_dir(self, key: str) -> Path:
        return self.root / "store" / f"{key}.evidence"

    def _put_evidence(self, key: str, evidence: dict[str, bytes]) -> None:
        folder = self._evidence_dir(key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{key[:16]}."))
        for name, data in evidence.items():
            (tmp / name).write_bytes(data)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)

    def evidence(self, key: str) -> dict[str, bytes] | None:
        """The evidence kept with a stored result ({} if its run left none), None if none was kept."""
        result = self.get(key)
        if result is None or result.get("evidence_kept") is None:
            return None
        folder = self._evidence_dir(key)
        return {name: (folder / name).read_bytes() for name in result["evidence_kept"] if (folder / name).is_file()}

    def discard(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        shutil.rmtree(self._evidence_dir(key), ignore_errors=True)

    def summary_path(self, assignment: str, student: str) -> Path:
        return self.root / "results" / assignment / f"{student}.json"

    def write_summary(self, assignment: str, student: str, summary: dict) -> None:
        write_json_atomic(self.summary_path(assignment, student), summary)

    def summaries(self, assignment: str) -> dict[str, dict]:
        folder = self.root / "results" / assignment
        return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}
