"""The runner's report and progress file, read as data.

Both arrive over the channel (``channel.py``) like every result file; what
they say about the run (its status, the cell running, the cells timed out)
is taken only where it has the expected form: small whole numbers, run
statuses. Anything else counts as no information, or as an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..model import Status

# What the payload writes (runner.py): its report of the run, the executed notebook, and the progress
# file it replaces as each cell starts (read when the watchdog ended the run and there is no report).
RUN_REPORT = "run.json"
RUN_REPORT_BYTES = 100_000
EXECUTED = "executed.ipynb"
PROGRESS = ".kit-progress.json"
PROGRESS_BYTES = 4_000
MAX_CELLS_NAMED = 50


@dataclass
class RunProgress:
    """Where a run was, by cell index in the submitted notebook (-1: the runner's guard cell)."""

    running: int | None = None  # the cell running when the run ended early; None: it ran to its end
    timed_out: list[int] = field(default_factory=list)  # cells interrupted at the cell timeout

    @classmethod
    def of(cls, data) -> RunProgress:
        """From the runner's JSON, as data: anything but small whole numbers is left out."""

        def index(value):
            return value if type(value) is int and -1 <= value <= 100_000 else None

        if not isinstance(data, dict):
            return cls()
        found = data.get("timed_out")
        timed_out = [index(v) for v in (found if isinstance(found, list) else [])[:MAX_CELLS_NAMED]]
        return cls(index(data.get("cell")), list(dict.fromkeys(i for i in timed_out if i is not None)))


def read_report(scratch: Path) -> tuple[Status, str, list, RunProgress]:
    """(status, message, capture errors, progress) from the runner's report, as data: an unknown status is an error."""
    try:
        run = json.loads((scratch / RUN_REPORT).read_text(encoding="utf-8"))
        errors = run.get("capture_errors", [])
        return (
            Status.of_run(run.get("status", "error")),
            str(run.get("message", ""))[:2000],
            [str(e)[:500] for e in (errors if isinstance(errors, list) else [])][:10],
            RunProgress.of(run),
        )
    except (OSError, ValueError, AttributeError, RecursionError):  # deep nesting too
        return Status.ERROR, "the runner's report was not valid", [], RunProgress()


def read_progress(scratch: Path) -> RunProgress:
    """The runner's progress file (brought back like the report), as data; empty if missing or not valid."""
    try:
        return RunProgress.of(json.loads((scratch / PROGRESS).read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError):
        return RunProgress()
