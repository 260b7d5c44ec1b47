"""The limits of a run, and the watchdog that enforces those the kernel does not.

``spec.py`` decides the rlimits (processes, data, file size, open files, no
core files) and the slot's CPUs that ``prlimit`` and ``taskset`` set. Where the
run has a cgroup (``cgroups.py``), the kernel enforces memory, processes and
CPU, and ``watch`` sleeps on the run's exit (a pidfd) and the cgroup's events,
waking for the wall clock and, once a second, for how full the run's
filesystems are (``Disk``). Without a cgroup (``Sandbox.cgroups = off``)
``watch`` also polls the process tree (``/proc``: threads, resident memory,
PSS once RSS over-counts), more often the closer the run is to a limit; that
path does not see tmpfs, memfd or SysV shared memory, so its results are
marked "limits not enforced". Either way it kills the run at the first limit
passed and says which.
"""

from __future__ import annotations

import fcntl
import math
import os
import select
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
POLL_SECONDS = (0.1, 0.5)  # watchdog without a cgroup: shortest and longest wait between looks at /proc
DISK_POLL_SECONDS = 1.0
FAST_GROWTH_MB_PER_S = 2000  # memory a run may add per second: how soon the next look must come
MAX_SCRATCH_ENTRIES = 20_000  # more files than this in scratch counts as too much disk
LOG_TAIL_BYTES = 8_000


def tool(name: str) -> str:
    """The path of a util-linux tool that enforces a limit (prlimit, taskset, setpriv)."""
    path = shutil.which(name)
    if not path:
        raise SandboxUnavailable(f"`{name}` (util-linux) is needed to enforce the sandbox's limits but is not on PATH")
    return path


def private_folder(path: Path) -> Path:
    """``path`` as a folder of this user's alone: made 0700, or checked (lstat: a real folder, ours, closed to
    others) if it exists. Another user of the machine who made it first could hold its locks or swap its
    files: then nothing is run (SandboxUnavailable), rather than trusting it."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
        raise SandboxUnavailable(
            f"{path} is not a private folder of this user (owner uid {info.st_uid}, mode {stat.filemode(info.st_mode)}): "
            "someone else made it: remove it (as root), or give the grader a private TMPDIR, and grade again"
        )
    return path


class Slot:
    """A numbered slot held (flock) for one run: its uid and CPUs are that run's alone.

    The locks live in one folder per grading user in the system's temp folder, so that every grading
    process of the machine (nbgrader's autograde, Dask workers with another HOME) shares them.
    """

    def __enter__(self) -> int:
        folder = private_folder(Path(tempfile.gettempdir()) / f"spamkit-sandbox-slots-{os.geteuid()}")
        for index in range(MAX_SLOTS):
            fd = os.open(folder / f"{index}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
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


# --- watching the run -------------------------------------------------------------------------------


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants, from /proc/<pid>/task/<tid>/children (no scan of all of /proc)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    stack.extend(int(child) for child in f.read().split())
            except (OSError, ValueError):
                continue
    return found


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


class TreeSampler:
    """The fallback's look at a run: threads and memory of its process tree, from /proc."""

    PAGE = os.sysconf("SC_PAGE_SIZE")

    def __init__(self, pid: int):
        self.pid = pid

    def sample(self, limit_mb: float) -> tuple[int, float]:
        """(threads, MB resident) of the tree: RSS, or PSS (shared pages counted once) when RSS says over."""
        pids = tree_pids(self.pid)
        tasks, rss = 0, 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                tasks += int(fields[17])  # num_threads
                rss += int(fields[21]) * self.PAGE  # rss in pages
            except (OSError, ValueError, IndexError):
                continue
        memory = rss / 2**20
        if memory > limit_mb:
            memory = self._pss(pids) / 2**20
        return tasks, memory

    @staticmethod
    def _pss(pids: list[int]) -> int:
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                            break
            except (OSError, ValueError):
                continue
        return total


def next_look(tasks: int, memory_mb: float, settings: Sandbox) -> float:
    """Seconds until the fallback's next look: soon when a limit is near, seldom when far."""
    headroom = max(0.0, settings.memory_mb - memory_mb) / FAST_GROWTH_MB_PER_S
    if tasks > 0.75 * settings.max_processes:
        headroom = 0.0
    return min(POLL_SECONDS[1], max(POLL_SECONDS[0], headroom))


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


FULL_BYTES = 1 << 20  # a filesystem of the run with less free than this is full


def size_setting(mb: int, settings: Sandbox) -> str:
    return "Sandbox.disk_mb" if mb == settings.disk_mb else "the sandbox's size for it"


def full_text(path: str, mb: int, settings: Sandbox) -> str:
    """A filesystem of the run that is full (the runner says the same from inside: payload/runner.py)."""
    return f"filled the {mb} MB of {path} ({size_setting(mb, settings)})"


class Disk:
    """How much the run wrote: its size-capped filesystems (a sandbox), else a walk of its scratch folder.

    A sandbox's home, /tmp and /dev/shm are tmpfs mounts of their own sizes, in the
    sandbox's mount namespace; the watchdog reads their fill through
    ``/proc/<pid>/root`` of a process in that namespace (one statvfs each). The
    kernel already refuses every write past a size (unlinked and O_TMPFILE files
    included); a full one, or more than ``MAX_SCRATCH_ENTRIES`` files, ends the run.
    """

    def __init__(self, pid: int, writable_mb: dict[str, int], scratch: Path, settings: Sandbox):
        self.pid, self.writable_mb, self.scratch, self.settings = pid, writable_mb, scratch, settings
        self.inside: int | None = None  # a process in the sandbox's mount namespace

    def over(self) -> str | None:
        """Why the run wrote too much, or None."""
        if not self.writable_mb:
            if _disk_mb(self.scratch, MAX_SCRATCH_ENTRIES) > self.settings.disk_mb:
                return f"wrote more than {self.settings.disk_mb} MB (or {MAX_SCRATCH_ENTRIES} files)"
            return None
        for path, mb in self.writable_mb.items():
            fs = self._statvfs(path)
            if fs is None:
                return None
            if fs.f_bavail * fs.f_frsize < FULL_BYTES:
                return full_text(path, mb, self.settings)
            if fs.f_files - fs.f_ffree > MAX_SCRATCH_ENTRIES:
                return f"made more than {MAX_SCRATCH_ENTRIES} files in {path}"
        return None

    def _statvfs(self, path: str):
        for _ in range(2):
            if self.inside is None:
                self.inside = _in_other_mount_namespace(self.pid)
                if self.inside is None:
                    return None  # still starting, or already gone
            try:
                return os.statvfs(f"/proc/{self.inside}/root{path}")
            except OSError:
                self.inside = None  # that process ended: find another
        return None


def _in_other_mount_namespace(pid: int) -> int | None:
    try:
        own = os.readlink("/proc/self/ns/mnt")
    except OSError:
        return None
    for candidate in tree_pids(pid)[1:]:
        try:
            if os.readlink(f"/proc/{candidate}/ns/mnt") != own:
                return candidate
        except OSError:
            continue
    return None


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


def _stop(popen: subprocess.Popen, proc: psutil.Process | None, group) -> None:
    """Kill the sandbox and wait until none of its processes is left.

    With a cgroup, every process of the run is in it, whatever it did (v2:
    cgroup.kill; v1: SIGKILL to its members until none is left). Without one
    the tree is walked afresh (never pids seen earlier, which may be reused by
    now); inside bwrap every orphan is re-parented to bwrap's PID 1, which is
    in the tree, and its exit empties the whole PID namespace.
    """
    procs = _tree(proc) if group is None and proc is not None else []
    if group is not None:
        group.kill()
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
    if group is not None:
        group.kill()  # what was still starting when the first round came
    psutil.wait_procs(procs, timeout=10)


class Watched:
    """How the watch ended: the limit passed (None: none), why, peak memory, CPU seconds of the run."""

    def __init__(self, status: Status | None, message: str, peak_mb: float, cpu_seconds: float | None):
        self.status, self.message, self.peak_mb, self.cpu_seconds = status, message, peak_mb, cpu_seconds


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):  # kernel before 5.3: the watchdog then wakes at its own rate
        return None


def _too_many(tasks: int, settings: Sandbox) -> tuple[Status, str]:
    return Status.TOO_MANY_PROCESSES, f"started {tasks} processes and threads (limit {settings.max_processes})"


def _too_much_memory(settings: Sandbox) -> tuple[Status, str]:
    return Status.OUT_OF_MEMORY, f"used more than {settings.memory_mb} MB of memory"


def _kernel_stopped(group, settings: Sandbox) -> tuple[Status | None, str]:
    """The limit the kernel enforced in the run's cgroup, if it had to: a refused fork, the OOM killer."""
    oom, refused = group.hit()
    if refused:
        return _too_many(group.usage().peak_tasks or settings.max_processes, settings)
    if oom:
        return _too_much_memory(settings)
    return None, ""


def watch(popen: subprocess.Popen, disk: Disk, settings: Sandbox, group=None) -> Watched:
    """Enforce wall time, memory, processes and disk until the run ends.

    ``group`` is the run's cgroup (``cgroups.Cgroup``) or None. The watchdog
    sleeps in poll(2) on the run's pidfd and the cgroup's event files, so a
    run that ends or hits a kernel limit wakes it at once; otherwise it wakes
    for the wall clock, the disk (once a second), v1's unannounced pids.events
    (once a second) and, without a cgroup, its look at the process tree.
    """
    start = time.monotonic()
    deadline = start + settings.notebook_timeout
    poller = select.poll()
    pidfd = _pidfd(popen.pid)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    for fd, mask in group.event_fds if group is not None else []:
        poller.register(fd, mask)
    sampler = TreeSampler(popen.pid) if group is None else None
    proc = _process(popen.pid) if group is None else None  # taken now: psutil then never kills a reused pid
    events_every = group.needs_polling() if group is not None else None
    peak = 0.0
    next_disk, next_sample = start + DISK_POLL_SECONDS, start
    status, message = None, ""
    try:
        while popen.poll() is None:
            now = time.monotonic()
            if group is not None:
                status, message = _kernel_stopped(group, settings)
            elif now >= next_sample:
                tasks, memory = sampler.sample(settings.memory_mb)
                peak = max(peak, memory)
                next_sample = now + next_look(tasks, memory, settings)
                if tasks >= settings.max_processes:
                    status, message = _too_many(tasks, settings)
                elif memory > settings.memory_mb:
                    status, message = _too_much_memory(settings)
            if status is None and now >= deadline:
                status, message = (
                    Status.TIMEOUT,
                    f"stopped after {settings.notebook_timeout} s (Sandbox.notebook_timeout)",
                )
            if status is None and now >= next_disk:
                next_disk = now + DISK_POLL_SECONDS
                wrote = disk.over()
                if wrote:
                    status, message = Status.TOO_MUCH_DISK, wrote
            if status:
                break
            wake = min(
                deadline,
                next_disk,
                next_sample if group is None else math.inf,
                now + events_every if events_every else math.inf,
            )
            timeout = max(0.0, wake - time.monotonic())
            if pidfd is None:
                timeout = min(timeout, POLL_SECONDS[1])
            poller.poll(math.ceil(timeout * 1000))
            if group is not None:
                group.rearm()
        if group is not None and status is None:  # ended by itself: did the kernel stop it at a limit?
            status, message = _kernel_stopped(group, settings)
        _stop(popen, proc, group)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    cpu = None
    if group is not None:
        usage = group.usage()
        cpu = usage.cpu_seconds
        peak = usage.peak_mb if usage.peak_mb is not None else peak
    return Watched(status, message, peak, cpu)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None
