"""The one way results leave a sandbox: a pipe from the runner to the grader, read as untrusted data.

The run's home is a filesystem of the sandbox's own (``spec.py``) that ends
with it, so nothing is read back from disk. The runner (``payload/runner.py``)
gets the write end of a pipe as an inherited file descriptor; bwrap's init
and monitor close it (they close every extra descriptor), and the runner
marks it close-on-exec and itself not dumpable before the kernel starts, so
student code can neither inherit it nor open it through ``/proc``. Over it
the runner sends frames, each a JSON header line ``{"name": ..., "size": N}``
and N bytes: the progress file as each cell starts, the evidence recorded at
each checkpoint, and at the end the executed notebook, its report and the
final evidence.

``Receiver`` reads them in a thread: only the names it was told, each up to
its own size (a later frame of a name replaces the earlier one), so what it
holds is bounded whatever comes down the pipe. A frame past its size, an
unknown name or a broken header is counted as a problem and skipped or ends
the reading; the run's own limits decide its status.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

MAX_HEADER = 1024
CHUNK = 1 << 16


class Receiver(threading.Thread):
    """Reads the frames of one run from ``fd`` (closed when the pipe ends)."""

    def __init__(self, fd: int, accepted: dict[str, int]):
        super().__init__(daemon=True)
        self.fd, self.accepted = fd, dict(accepted)
        self.files: dict[str, bytes] = {}
        self.problems: dict[str, str] = {}

    def run(self) -> None:
        with os.fdopen(self.fd, "rb", buffering=CHUNK) as stream:
            while True:
                header = stream.readline(MAX_HEADER)
                if not header:
                    return
                try:
                    frame = json.loads(header)
                    name, size = str(frame["name"]), int(frame["size"])
                except (ValueError, KeyError, TypeError):
                    self.problems["channel"] = "a frame header was not valid"
                    return
                if size < 0:
                    self.problems["channel"] = "a frame header was not valid"
                    return
                if name not in self.accepted or size > self.accepted[name]:
                    self.problems[name if name in self.accepted else "channel"] = (
                        "too big" if name in self.accepted else f"unexpected file {name[:100]!r}"
                    )
                    if not _skip(stream, size):
                        return
                    continue
                data = stream.read(size)
                if len(data) < size:  # the run ended in the middle of a frame: nothing half-sent is kept
                    return
                self.files[name] = data
                self.problems.pop(name, None)

    def write_to(self, folder: Path) -> dict[str, str]:
        """Write what arrived into ``folder`` (a fresh one); returns, per accepted name missing, why."""
        for name, data in self.files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return {name: self.problems.get(name, "missing") for name in self.accepted if name not in self.files}


def _skip(stream, size: int) -> bool:
    while size > 0:
        chunk = stream.read(min(size, CHUNK))
        if not chunk:
            return False
        size -= len(chunk)
    return True
