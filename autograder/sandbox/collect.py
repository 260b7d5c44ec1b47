"""Bringing results back out of a sandbox, trusting nothing the run left.

After the run every process of the sandbox is gone (PID namespace). The
scratch folder is renamed to ``untrusted``, and only the named result files
are copied, as size-capped regular files opened without following symlinks,
into a fresh scratch folder; everything else the student left behind
(planted symlinks, pytest.py, conftest.py, ...) stays in ``untrusted`` and is
deleted.
"""

from __future__ import annotations

import json
import os
import stat
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

    running: int | None = None       # the cell running when the run ended early; None: it ran to its end
    timed_out: list[int] = field(default_factory=list)   # cells interrupted at the cell timeout

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


def read_untrusted(base: Path, relpath: str, max_bytes: int) -> tuple[bytes | None, str]:
    """A regular file under base, never following a symlink at any step.

    Returns (data, "") or (None, why): "missing", "not a regular file", "too big".
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    fds = []
    try:
        fds.append(os.open(base, flags | os.O_DIRECTORY))
        *folders, name = relpath.split("/")
        for folder in folders:
            fds.append(os.open(folder, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
        fds.append(os.open(name, flags | os.O_NONBLOCK, dir_fd=fds[-1]))
        info = os.fstat(fds[-1])
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_size > max_bytes:
            return None, "too big"
        with os.fdopen(os.dup(fds[-1]), "rb") as f:
            data = f.read(max_bytes + 1)
        return (data, "") if len(data) <= max_bytes else (None, "too big")
    except OSError:  # absent, or a symlink where O_NOFOLLOW / O_DIRECTORY refuse it
        return None, "missing"
    finally:
        for fd in fds:
            os.close(fd)


def bring_back(scratch: Path, files: dict[str, int]) -> tuple[Path, dict]:
    """Move what the run left to ``untrusted`` and copy back only ``files`` (relative path -> largest size).

    Returns the ``untrusted`` folder and, per file not brought back, why ("missing", "not a regular
    file", "too big").
    """
    untrusted = scratch.with_name("untrusted")
    os.rename(scratch, untrusted)
    scratch.mkdir(mode=0o700)
    problems = {}
    for relpath, max_bytes in files.items():
        data, problem = read_untrusted(untrusted, relpath, max_bytes)
        if data is None:
            problems[relpath] = problem
            continue
        target = scratch / relpath
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
    return untrusted, problems


def read_report(scratch: Path) -> tuple[Status, str, list, RunProgress]:
    """(status, message, capture errors, progress) from the runner's report, as data: an unknown status is an error."""
    try:
        run = json.loads((scratch / RUN_REPORT).read_text(encoding="utf-8"))
        errors = run.get("capture_errors", [])
        return (Status.of_run(run.get("status", "error")), str(run.get("message", ""))[:2000],
                [str(e)[:500] for e in (errors if isinstance(errors, list) else [])][:10], RunProgress.of(run))
    except (OSError, ValueError, AttributeError, RecursionError):  # deep nesting too
        return Status.ERROR, "the runner's report was not valid", [], RunProgress()


def read_progress(scratch: Path) -> RunProgress:
    """The runner's progress file (brought back like the report), as data; empty if missing or not valid."""
    try:
        return RunProgress.of(json.loads((scratch / PROGRESS).read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError):
        return RunProgress()
