"""How a sandboxed run ended, told with its cells: which one was running, which hit the cell timeout.

The runner reports cells by index only (in its report, or in the progress
file it replaces as each cell starts, which is all there is when the watchdog
killed the sandbox). Their names come from the grader's own copy of the
notebook, read before the run: the nbgrader grade_id (``model.cell_label``,
restored from the gradebook for graded cells) or "cell N". So an index the
run made up can only name another real cell of the same notebook, and the
limits named are the grader's settings. The texts, e.g.

    cell `compile` stopped after 600 s (Sandbox.cell_timeout)
    the Python kernel died while cell `fit` was running
    stopped after 900 s (Sandbox.notebook_timeout) while cell `fit` was running

are the run's message: the summary, the grade table's Details, the class
report, the student's feedback and Gradescope all show it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..model import Status, cell_label, cells_timed_out, while_running
from ..settings import Sandbox
from .collect import RunProgress

# The cells the runner adds around the student's (payload/runner.py's tags): before the first, after the last.
GUARD_CELL, CAPTURE_CELL = "kit-evidence-guard", "kit-evidence-capture"
IGNORED_INTERRUPT = ", and the run ended: the kernel did not answer the interrupt"


def cell_labels(notebook: Path) -> list[str]:
    """The name of each cell of the notebook about to run (the grader's copy)."""
    cells = json.loads(notebook.read_text(encoding="utf-8")).get("cells", [])
    return [cell_label(cell, index) for index, cell in enumerate(cells)]


def _label(labels: list[str], index: int | None) -> str | None:
    if index is None:
        return None
    if index == -1:
        return GUARD_CELL
    if index == len(labels):
        return CAPTURE_CELL
    return labels[index] if 0 <= index < len(labels) else None


def describe(
    status: Status, message: str, progress: RunProgress, labels: list[str], settings: Sandbox
) -> tuple[Status, str]:
    """The run's status and message with the cells named: the cell running when it ended early, the cells timed out.

    A run that went on after a cell was interrupted at the cell timeout is not
    ``ok`` but ``cell_timeout`` (the checks still decide the grade).
    """
    running = _label(labels, progress.running)
    timed_out = [label for label in (_label(labels, i) for i in progress.timed_out) if label]
    if status is Status.OK and timed_out:
        status = Status.CELL_TIMEOUT
    parts = [message] if message else []
    if status is Status.TIMEOUT and running in timed_out:  # interrupted at the cell timeout, but it went on
        timed_out.remove(running)
        parts = [cells_timed_out([running], settings.cell_timeout) + IGNORED_INTERRUPT]
    elif running and status not in (Status.OK, Status.CELL_TIMEOUT):
        parts = [" ".join([*parts, while_running(running)])]
    if timed_out:
        stopped = cells_timed_out(timed_out, settings.cell_timeout)
        parts = [stopped, *parts] if status is Status.CELL_TIMEOUT else [*parts, stopped]
    return status, "; ".join(parts)
