"""The limits of a sandboxed run, and the watchdog that enforces those the kernel cannot.

``prlimit`` sets the rlimits (processes, data, file size, no core files),
``taskset`` pins the run to its slot's CPUs, and ``watch`` polls the whole
process tree for wall time, memory (PSS once RSS over-counts), process count
and the scratch folder's size, killing the tree at the first limit passed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import psutil

from ..errors import SandboxUnavailable
from ..model import Status
from ..settings import Sandbox

SANDBOX_UID_BASE = 3_900_000  # + slot: one uid per concurrent sandbox, no account uses these
MAX_SLOTS = 256
POLL_SECONDS = 0.1
DISK_POLL_SECONDS = 1.0
MAX_SCRATCH_ENTRIES = 20_000   # more files than this in scratch counts as too much disk
LOG_TAIL_BYTES = 8_000


def tool(name: str) -> str:
    """The path of a util-linux tool that enforces a limit (prlimit, taskset, setpriv)."""
    path = shutil.which(name)
    if not path:
        raise SandboxUnavailable(f"`{name}` (util-linux) is needed to enforce the sandbox's limits but is not on PATH")
    return path


class Slot:
    """A numbered slot held (flock) for one run: its uid and CPUs are that run's alone."""

    def __enter__(self) -> int:
        folder = Path(tempfile.gettempdir()) / f"spamkit-sandbox-slots-{os.geteuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        for index in range(MAX_SLOTS):
            fd = os.open(folder / f"{index}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.fd, self.index = fd, index
            return index
        raise RuntimeError(f"more than {MAX_SLOTS} sandboxes at once")

    def __exit__(self, *exc) -> None:
        os.close(self.fd)


def slot_uid(slot: int) -> int:
    return SANDBOX_UID_BASE + slot


def slot_cpus(slot: int, threads: int) -> str:
    allowed = sorted(os.sched_getaffinity(0))
    count = max(1, min(threads, len(allowed)))
    return ",".join(str(allowed[(slot * count + i) % len(allowed)]) for i in range(count))


def rlimits(settings: Sandbox, strategy: str, uid: int | None = None) -> list[str]:
    nproc = settings.max_processes
    uid = os.getuid() if uid is None else uid
    if strategy in ("userns", "none") and uid != 0:  # the user's other processes count too
        nproc += sum(p.info["num_threads"] or 0 for p in psutil.process_iter(["uids", "num_threads"])
                     if p.info["uids"] and p.info["uids"].real == uid)
    data = int(settings.memory_mb * 1.5) << 20
    return [tool("prlimit"), f"--nproc={nproc}", f"--data={data}", f"--fsize={settings.disk_mb << 20}",
            "--core=0", "--"]


def rlimits_if_possible(settings: Sandbox) -> list[str]:
    """Unsandboxed runs keep the rlimits where prlimit exists (RLIMIT_NPROC means nothing for root)."""
    return rlimits(settings, "none") if shutil.which("prlimit") else []


def pin_if_possible(slot: int, settings: Sandbox) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "--cpu-list", slot_cpus(slot, settings.cpu_threads)] if taskset else []


# --- watching the run -------------------------------------------------------------------------------

def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def _tasks(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        try:
            total += p.num_threads()
        except psutil.Error:
            pass
    return total


def _memory_mb(procs: list[psutil.Process], limit_mb: float) -> float:
    """Resident memory of the tree; PSS (exact share of shared pages) once RSS says over the limit."""
    def total(measure) -> float:
        size = 0
        for p in procs:
            try:
                size += measure(p)
            except psutil.Error:
                pass
        return size / 2**20

    rss = total(lambda p: p.memory_info().rss)
    if rss <= limit_mb:
        return rss
    return total(lambda p: p.memory_full_info().pss)


def _disk_mb(folder: Path, max_entries: int) -> float:
    """Space used under folder (allocated blocks, symlinks not followed); inf past max_entries."""
    used, entries, stack = 0, 0, [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    if entries > max_entries:
                        return float("inf")
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    used += st.st_blocks * 512
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return used / 2**20


class OutputTail(threading.Thread):
    """Reads the runner's stdout/stderr, keeping only its last bytes."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.data = stream, b""

    def run(self):
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            self.data = (self.data + chunk)[-LOG_TAIL_BYTES:]

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def _stop(popen: subprocess.Popen, proc: psutil.Process) -> None:
    """Kill the sandbox and wait until none of its processes is left.

    The tree is walked afresh (never pids seen earlier, which may be reused by
    now). Inside bwrap every orphan is re-parented to bwrap's PID 1, which is
    in the tree, and its exit empties the whole PID namespace.
    """
    procs = _tree(proc)
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    popen.wait()
    psutil.wait_procs(procs, timeout=10)


def watch(popen: subprocess.Popen, scratch: Path, settings: Sandbox) -> tuple[Status | None, str, float]:
    """Enforce wall time, memory, processes and disk until the run ends."""
    start = time.monotonic()
    proc = psutil.Process(popen.pid)
    peak, next_disk = 0.0, start
    status, message = None, ""
    while popen.poll() is None:
        procs = _tree(proc)
        tasks = _tasks(procs)
        memory = _memory_mb(procs, settings.memory_mb)
        peak = max(peak, memory)
        now = time.monotonic()
        if tasks >= settings.max_processes:
            status, message = Status.TOO_MANY_PROCESSES, f"started {tasks} processes and threads (limit {settings.max_processes})"
        elif memory > settings.memory_mb:
            status, message = Status.OUT_OF_MEMORY, f"used more than {settings.memory_mb} MB of memory"
        elif now - start > settings.notebook_timeout:
            status, message = Status.TIMEOUT, f"stopped after {settings.notebook_timeout} s (Sandbox.notebook_timeout)"
        elif now >= next_disk:
            next_disk = now + DISK_POLL_SECONDS
            if _disk_mb(scratch, MAX_SCRATCH_ENTRIES) > settings.disk_mb:
                status, message = Status.TOO_MUCH_DISK, f"wrote more than {settings.disk_mb} MB (or {MAX_SCRATCH_ENTRIES} files)"
        if status:
            break
        time.sleep(POLL_SECONDS)
    _stop(popen, proc)
    return status, message, peak
