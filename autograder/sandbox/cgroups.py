"""Kernel-enforced limits: one cgroup per sandboxed run, where the host lets the grader make one.

Memory, process count and CPU of a run are then limits of the kernel, not of
a watchdog that polls: the kernel's OOM killer acts at ``memory_mb``, fork()
fails past ``max_processes``, and the run can use only its slot's CPUs (and
no more CPU time than ``cpu_threads`` cores). The same cgroup counts the run's
exact CPU seconds and its peak memory, and tells the watchdog at once when a
limit was hit (an eventfd or a file event), so the watchdog sleeps until
something happens instead of walking ``/proc``.

Both kinds of hosts exist, and ``probe`` picks, once per process, what this one has:

``v2`` (the unified hierarchy)
    Children of the grader's own cgroup, when its ``cgroup.subtree_control``
    has (or can be given) ``memory`` and ``pids`` (the root, or a delegated
    cgroup that holds no process). A cgroup that holds processes cannot give
    its children controllers (the kernel's no-internal-processes rule), so
    when the grader sits in a delegated leaf (the hub's
    ``spamkit_hub/<instructor>/server``, autograder/hub/cgroup_delegation.py)
    whose parent we may write (the folder and its ``cgroup.procs``) and which
    gives its children ``memory`` and ``pids``, the runs are made as siblings
    of the leaf, under that parent: the common ancestor of the leaf and a
    run's cgroup is then the parent, whose ``cgroup.procs`` is ours, as the
    kernel's delegation containment asks. Each run: ``memory.max``,
    ``memory.swap.max = 0``, ``pids.max``, ``cpu.max`` and ``cpuset.cpus`` where
    those controllers are on. Hit limits are read from ``memory.events``
    (``oom_kill``) and ``pids.events`` (``max``), woken by their file events;
    the peak from ``memory.peak``, CPU from ``cpu.stat``; ``cgroup.kill`` ends it.
``v1`` (one hierarchy per controller)
    A child of the grader's own cgroup in each of the ``memory``, ``pids``,
    ``cpuacct``, ``cpu`` and ``cpuset`` hierarchies (memory and pids required):
    ``memory.limit_in_bytes`` (and ``memsw`` where swap is accounted),
    ``pids.max``, ``cpu.cfs_quota_us``, ``cpuset.cpus``. The OOM killer's
    action comes through an eventfd registered on ``memory.oom_control``; a
    refused fork shows in ``pids.events``, which v1 does not announce, so the
    watchdog reads it once a second (fork keeps failing meanwhile). Peak from
    ``memory.max_usage_in_bytes``, CPU from ``cpuacct.usage``.
none
    No cgroup filesystem, no rights (a grader that is not root and has no
    delegated subtree), or ``Sandbox.cgroups = "off"``: the watchdog polls
    ``/proc`` (``limits.watch``), the more often the nearer a run is to a limit.

A run enters its cgroup before it runs anything: the sandbox command is
prefixed by ``/bin/sh -c 'echo $$ > .../cgroup.procs && exec "$@"'``, so the
shell moves itself in and then becomes prlimit, bwrap and the runner; every
process the notebook starts is born inside.
"""

from __future__ import annotations

import errno
import os
import shlex
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "spamkit-"  # name of every cgroup the kit makes: spamkit-<pid>-<slot>-<random>
CFS_PERIOD_US = 100_000
V1_CONTROLLERS = ("memory", "pids", "cpuacct", "cpu", "cpuset")


@dataclass
class Layout:
    """Where the cgroup filesystems are mounted and where this process sits in them."""

    v2_mount: Path | None = None
    v2_path: str = "/"
    v1_mounts: dict[str, Path] = field(default_factory=dict)  # controller -> mount point
    v1_paths: dict[str, str] = field(default_factory=dict)  # controller -> this process's cgroup

    @classmethod
    def read(cls, mountinfo: Path = Path("/proc/self/mountinfo"), cgroup: Path = Path("/proc/self/cgroup")) -> Layout:
        layout = cls()
        try:
            mounts = mountinfo.read_text().splitlines()
            own = cgroup.read_text().splitlines()
        except OSError:
            return layout
        for line in mounts:
            left, _, right = line.partition(" - ")
            fields, extra = left.split(), right.split()
            if len(fields) < 5 or len(extra) < 3:
                continue
            mount_point, fstype, options = Path(fields[4]), extra[0], extra[2].split(",")
            if fstype == "cgroup2" and layout.v2_mount is None:
                layout.v2_mount = mount_point
            elif fstype == "cgroup":
                for name in options:
                    if name in V1_CONTROLLERS:
                        layout.v1_mounts.setdefault(name, mount_point)
        for line in own:
            hierarchy, _, rest = line.partition(":")
            controllers, _, path = rest.partition(":")
            if hierarchy == "0" and not controllers:
                layout.v2_path = path or "/"
            for name in controllers.split(","):
                if name in V1_CONTROLLERS:
                    layout.v1_paths[name] = path or "/"
        return layout


def _write(path: Path, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _write_if_there(path: Path, value) -> None:
    """Write an interface file the host may not have (no swap accounting, an older kernel)."""
    try:
        _write(path, value)
    except OSError:
        pass


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _keyed(text: str) -> dict[str, int]:
    """``name value`` lines (memory.events, pids.events, cpu.stat, memory.oom_control) as a dict."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _dead(pid_text: str) -> bool:
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return True
    except PermissionError:
        return False
    return False


def clean_stale(base: Path) -> None:
    """Remove the empty cgroups left by graders that died (their pid is gone)."""
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(PREFIX) and entry.is_dir() and _dead(entry.name[len(PREFIX) :].split("-")[0]):
            try:
                entry.rmdir()
            except OSError:
                pass


@dataclass
class Limits:
    memory_mb: int
    max_processes: int
    cpus: str  # the slot's CPU list, e.g. "0" or "0,1"
    threads: int  # CPU time: at most this many cores


@dataclass
class Usage:
    """What the cgroup counted and saw: the watchdog's final word on a run."""

    cpu_seconds: float | None
    peak_mb: float | None
    oom_kills: int
    refused_forks: int
    peak_tasks: int | None


class Cgroup:
    """One run's cgroup (in one or several hierarchies)."""

    version = ""

    def __init__(self, dirs: dict[str, Path]):
        self.dirs = dirs  # role -> folder: "memory", "pids", "cpu", "cpuacct", "cpuset" (v2: all one)
        self.event_fds: list[tuple[int, int]] = []  # (fd, poll mask) that wake the watchdog
        self._open: list[int] = []

    # --- entering ---------------------------------------------------------------------------
    def procs_files(self) -> list[Path]:
        return sorted({d / "cgroup.procs" for d in self.dirs.values()})

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` started inside this cgroup: the shell moves itself in, then execs it."""
        moves = " && ".join(f"echo $$ > {shlex.quote(str(p))}" for p in self.procs_files())
        return ["/bin/sh", "-c", f'{moves} && exec "$@"', "sh", *command]

    # --- watching ---------------------------------------------------------------------------
    def hit(self) -> tuple[bool, int]:
        """(the OOM killer acted, forks refused at pids.max) so far."""
        raise NotImplementedError

    def rearm(self) -> None:
        """Read the event files again so their next change wakes the watchdog."""

    def needs_polling(self) -> float | None:
        """Seconds between reads of events nothing announces (None: every limit wakes the watchdog)."""
        return None

    def usage(self) -> Usage:
        raise NotImplementedError

    def tasks(self) -> list[int]:
        return [int(p) for p in _read(self.dirs["pids"] / "cgroup.procs").split()]

    # --- ending -----------------------------------------------------------------------------
    def kill(self) -> None:
        """SIGKILL every process in the cgroup until none is left (new ones may fork meanwhile)."""
        for _ in range(200):
            pids = self.tasks()
            alive = 0
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    alive += 1
                except ProcessLookupError:  # gone (the kernel drops it from cgroup.procs as it exits)
                    pass
                except PermissionError:
                    alive += 1
            if not alive:
                return
            time.sleep(0.01)

    def remove(self) -> None:
        for fd in self._open:
            try:
                os.close(fd)
            except OSError:
                pass
        self._open.clear()
        self.event_fds.clear()
        for folder in sorted(set(self.dirs.values()), key=lambda p: -len(p.parts)):
            for _ in range(50):  # busy while the last exits are on their way
                try:
                    folder.rmdir()
                except OSError as exc:
                    if exc.errno == errno.EBUSY:
                        time.sleep(0.05)
                        continue
                break

    def _watch(self, path: Path, mask: int) -> int | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        self._open.append(fd)
        os.read(fd, 4096)
        self.event_fds.append((fd, mask))
        return fd


class V2(Cgroup):
    version = "v2"

    @classmethod
    def create(cls, parent: Path, name: str, limits: Limits) -> V2:
        folder = parent / name
        folder.mkdir()
        group = cls({"memory": folder, "pids": folder, "cpu": folder, "cpuacct": folder, "cpuset": folder})
        try:
            _write(folder / "memory.max", limits.memory_mb << 20)
            _write_if_there(folder / "memory.swap.max", 0)  # no way around the limit through swap
            _write_if_there(folder / "memory.oom.group", 1)  # the OOM killer ends the whole run
            _write(folder / "pids.max", limits.max_processes)
            enabled = _read(parent / "cgroup.subtree_control").split()
            if "cpu" in enabled:
                _write(folder / "cpu.max", f"{limits.threads * CFS_PERIOD_US} {CFS_PERIOD_US}")
            if "cpuset" in enabled:
                _write(folder / "cpuset.cpus", limits.cpus)
        except OSError:
            group.remove()
            raise
        import select

        group._watch(folder / "memory.events", select.POLLPRI)
        group._watch(folder / "pids.events", select.POLLPRI)
        return group

    def hit(self) -> tuple[bool, int]:
        folder = self.dirs["memory"]
        return (
            _keyed(_read(folder / "memory.events")).get("oom_kill", 0) > 0,
            _keyed(_read(folder / "pids.events")).get("max", 0),
        )

    def rearm(self) -> None:
        for fd, _ in self.event_fds:
            try:
                os.lseek(fd, 0, os.SEEK_SET)
                os.read(fd, 4096)
            except OSError:
                pass

    def usage(self) -> Usage:
        folder = self.dirs["memory"]
        oom, refused = self.hit()
        micro = _keyed(_read(folder / "cpu.stat")).get("usage_usec")
        peak = _number(_read(folder / "memory.peak"))
        return Usage(
            cpu_seconds=None if micro is None else micro / 1e6,
            peak_mb=None if peak is None else peak / 2**20,
            oom_kills=int(oom),
            refused_forks=refused,
            peak_tasks=_number(_read(folder / "pids.peak")),
        )

    def kill(self) -> None:
        try:
            _write(self.dirs["memory"] / "cgroup.kill", 1)
        except OSError:
            pass
        super().kill()


class V1(Cgroup):
    version = "v1"

    @classmethod
    def create(cls, parents: dict[str, Path], name: str, limits: Limits) -> V1:
        dirs: dict[str, Path] = {}
        group = cls(dirs)
        try:
            for controller, parent in parents.items():
                folder = parent / name
                if folder not in dirs.values():
                    folder.mkdir()
                dirs[controller] = folder
            memory = dirs["memory"]
            _write(memory / "memory.limit_in_bytes", limits.memory_mb << 20)
            if (memory / "memory.memsw.limit_in_bytes").exists():  # swap accounted: no way around the limit
                _write_if_there(memory / "memory.memsw.limit_in_bytes", limits.memory_mb << 20)
            _write(dirs["pids"] / "pids.max", limits.max_processes)
            if "cpu" in dirs and (dirs["cpu"] / "cpu.cfs_quota_us").exists():
                _write(dirs["cpu"] / "cpu.cfs_period_us", CFS_PERIOD_US)
                _write(dirs["cpu"] / "cpu.cfs_quota_us", limits.threads * CFS_PERIOD_US)
            if "cpuset" in dirs:  # a v1 cpuset takes no task before it has CPUs and memory nodes
                parent = parents["cpuset"]
                _write(
                    dirs["cpuset"] / "cpuset.mems",
                    _read(parent / "cpuset.effective_mems").strip() or _read(parent / "cpuset.mems").strip(),
                )
                _write(dirs["cpuset"] / "cpuset.cpus", limits.cpus)
            group._register_oom(memory)
        except OSError:
            group.remove()
            raise
        return group

    def _register_oom(self, memory: Path) -> None:
        """An eventfd the kernel signals when the OOM killer acts in this cgroup."""
        import select

        efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._open.append(efd)
        control = os.open(memory / "memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
        self._open.append(control)
        _write(memory / "cgroup.event_control", f"{efd} {control}")
        self.event_fds.append((efd, select.POLLIN))
        self._oom_event = efd
        self._oom_signalled = False

    def rearm(self) -> None:
        try:
            if os.eventfd_read(self._oom_event):
                self._oom_signalled = True
        except (BlockingIOError, OSError, AttributeError):
            pass

    def needs_polling(self) -> float | None:
        return 1.0  # pids.events of v1 is not announced

    def hit(self) -> tuple[bool, int]:
        self.rearm()
        control = _keyed(_read(self.dirs["memory"] / "memory.oom_control"))
        oom = self._oom_signalled or control.get("oom_kill", 0) > 0 or control.get("under_oom", 0) > 0
        return oom, _keyed(_read(self.dirs["pids"] / "pids.events")).get("max", 0)

    def usage(self) -> Usage:
        oom, refused = self.hit()
        nanos = _number(_read(self.dirs["cpuacct"] / "cpuacct.usage")) if "cpuacct" in self.dirs else None
        peak = _number(_read(self.dirs["memory"] / "memory.max_usage_in_bytes"))
        return Usage(
            cpu_seconds=None if nanos is None else nanos / 1e9,
            peak_mb=None if peak is None else peak / 2**20,
            oom_kills=int(oom),
            refused_forks=refused,
            peak_tasks=_number(_read(self.dirs["pids"] / "pids.peak")),
        )


class Host:
    """How this host makes a run's cgroup (v1 or v2), found by ``probe``."""

    def __init__(self, version: str, parents: dict[str, Path]):
        self.version = version
        self.parents = parents

    def create(self, slot: int, limits: Limits) -> Cgroup:
        name = f"{PREFIX}{os.getpid()}-{slot}-{uuid.uuid4().hex[:8]}"
        if self.version == "v2":
            return V2.create(self.parents["memory"], name, limits)
        return V1.create(self.parents, name, limits)


def _v2_parent(layout: Layout) -> Path | None:
    """The grader's own v2 cgroup, if its children can get the memory and pids controllers; else the
    parent of a delegated leaf we sit in (``_v2_delegated_leaf_parent``)."""
    if layout.v2_mount is None:
        return None
    parent = layout.v2_mount / layout.v2_path.lstrip("/")
    enabled = set(_read(parent / "cgroup.subtree_control").split())
    if {"memory", "pids"} <= enabled:
        return parent
    sibling_of = _v2_delegated_leaf_parent(parent, layout.v2_mount)
    if sibling_of is not None:
        return sibling_of
    available = set(_read(parent / "cgroup.controllers").split())
    if not {"memory", "pids"} <= available:
        return None
    wanted = [c for c in ("memory", "pids", "cpu", "cpuset") if c in available and c not in enabled]
    try:  # works at the root, or where this process's cgroup holds no process (delegated subtree)
        _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
    except OSError:
        try:
            _write(parent / "cgroup.subtree_control", "+memory +pids")
        except OSError:
            return None
    return parent if {"memory", "pids"} <= set(_read(parent / "cgroup.subtree_control").split()) else None


def _v2_delegated_leaf_parent(own: Path, mount: Path) -> Path | None:
    """The parent of our own cgroup, when ours holds processes (it cannot give children controllers)
    and the parent is delegated to us with memory and pids on for its children: runs go next to us."""
    if own == mount or not _read(own / "cgroup.procs").split():
        return None
    parent = own.parent
    if not {"memory", "pids"} <= set(_read(parent / "cgroup.subtree_control").split()):
        return None
    if not (os.access(parent, os.W_OK) and os.access(parent / "cgroup.procs", os.W_OK)):
        return None
    return parent


def _v1_parents(layout: Layout) -> dict[str, Path] | None:
    if not {"memory", "pids"} <= set(layout.v1_mounts):
        return None
    return {
        c: layout.v1_mounts[c] / layout.v1_paths.get(c, "/").lstrip("/")
        for c in V1_CONTROLLERS
        if c in layout.v1_mounts
    }


def probe(layout: Layout | None = None) -> Host | None:
    """What this host offers: v2 where its memory and pids controllers serve us, else v1, else None.

    A trial cgroup is made (with a small limit) and removed: write access is what counts.
    """
    layout = layout or Layout.read()
    trial = Limits(memory_mb=64, max_processes=8, cpus=str(min(os.sched_getaffinity(0))), threads=1)
    candidates = []
    v2 = _v2_parent(layout)
    if v2 is not None:
        candidates.append(Host("v2", {"memory": v2}))
    v1 = _v1_parents(layout)
    if v1 is not None:
        candidates.append(Host("v1", v1))
    for host in candidates:
        for parent in set(host.parents.values()):
            clean_stale(parent)
        try:
            host.create(0, trial).remove()
        except OSError:
            continue
        return host
    return None
