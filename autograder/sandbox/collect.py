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
from pathlib import Path

from ..model import Status

# What the payload writes (runner.py): its report of the run, and the executed notebook.
RUN_REPORT = "run.json"
RUN_REPORT_BYTES = 100_000
EXECUTED = "executed.ipynb"


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


def read_report(scratch: Path) -> tuple[Status, str, list]:
    """(status, message, capture errors) from the runner's report, as data: an unknown status is an error."""
    try:
        run = json.loads((scratch / RUN_REPORT).read_text(encoding="utf-8"))
        errors = run.get("capture_errors", [])
        return (Status.of_run(run.get("status", "error")), str(run.get("message", ""))[:2000],
                [str(e)[:500] for e in (errors if isinstance(errors, list) else [])][:10])
    except (OSError, ValueError, AttributeError):
        return Status.ERROR, "the runner's report was not valid", []
