"""Where graded results live between the grading run and the gradebook.

``ResultStore`` keeps each sandbox-and-checks result under a key that names
what ran (the code, normalised as ``grading/identical.py`` allows, student
files, settings, data, kit code), so a batch that is killed and restarted
re-runs nothing it already finished, a changed submission is graded again,
and a classmate's identical code is not run twice (``find`` / ``place``). Writes are atomic (temp + rename).
Beside each result lies the evidence its run left (evidence.json and the
trained weights), so one check can be run again later without re-running the
notebook. Per-student summaries (checks, metrics, status; no notebook) feed
exports and the class report. Both are the typed results of ``model.py``,
stored as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..grading.identical import can_stand_for
from ..grading.submission import Submission
from ..model import GradingResult, Summary


def write_json_atomic(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


class ResultStore:
    """``.kit/`` of a course root: results by key (``store/``), summaries by student (``results/``)."""

    def __init__(self, course_root: Path):
        self.root = Path(course_root) / ".kit"

    def _path(self, key: str) -> Path:
        return self.root / "store" / f"{key}.json"

    def _record(self, key: str) -> dict | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError:  # a torn file from an older crash: grade again
            return None

    def get(self, key: str) -> GradingResult | None:
        record = self._record(key)
        try:
            return GradingResult.from_dict(record) if record is not None else None
        except (KeyError, TypeError, ValueError):  # not a result this kit can read: grade again
            return None

    def find(self, submission: Submission) -> tuple[str, GradingResult | None]:
        """The key a submission's result is (or will be) stored under, and that result if there is one.

        The result of identical code (``submission.key``) grades it when it can stand for this code as
        written (``identical.can_stand_for``); else a result of this very code (``exact_key``) does.
        """
        shared = self.get(submission.key)
        if shared is not None and can_stand_for(shared, submission.code):
            return submission.key, shared
        if submission.exact_key:
            own = self.get(submission.exact_key)
            if own is not None:
                return submission.exact_key, own
        return self.place(submission, shared), None

    def place(self, submission: Submission, shared: GradingResult | None = None) -> str:
        """Where a fresh result of ``submission`` goes: its group's key, unless that holds another text's run."""
        shared = shared if shared is not None else self.get(submission.key)
        if shared is None or shared.code == submission.code or not submission.exact_key:
            return submission.key
        return submission.exact_key

    def put(self, key: str, result: GradingResult) -> None:
        """Store a result; its ``evidence`` files (name -> bytes) go to a folder beside it."""
        evidence = result.evidence
        if evidence is not None:
            self._put_evidence(key, evidence)
        record = result.to_dict()
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
        record = self._record(key)
        if record is None or record.get("evidence_kept") is None:
            return None
        folder = self._evidence_dir(key)
        return {name: (folder / name).read_bytes() for name in record["evidence_kept"] if (folder / name).is_file()}

    def discard(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        shutil.rmtree(self._evidence_dir(key), ignore_errors=True)

    def summary_path(self, assignment: str, student: str) -> Path:
        return self.root / "results" / assignment / f"{student}.json"

    def write_summary(self, assignment: str, student: str, summary: Summary) -> None:
        write_json_atomic(self.summary_path(assignment, student), summary.to_dict())

    def summary(self, assignment: str, student: str) -> Summary | None:
        """A student's summary, or None if there is none (or it cannot be read)."""
        try:
            return Summary.from_dict(json.loads(self.summary_path(assignment, student).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def summaries(self, assignment: str) -> dict[str, Summary]:
        folder = self.root / "results" / assignment
        return {
            p.stem: Summary.from_dict(json.loads(p.read_text(encoding="utf-8"))) for p in sorted(folder.glob("*.json"))
        }
