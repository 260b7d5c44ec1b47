"""A cgroup subtree of the grading account's own, so that the sandbox can give each run its limits.

The sandbox makes each run's cgroup next to the grading process (autograder/sandbox/cgroups.py). On a
hub the grader is the instructor's server, an unprivileged process, so root (the hub command) hands it
a subtree. Students get nothing: their servers stay where the hub is, and they can neither write these
files nor signal the instructor's processes. Both kinds of hosts:

cgroup v1 (``delegate``)
    ``<the hub's cgroup>/<CourseHub.cgroup_name>/<instructor>`` in each hierarchy; the folder and its
    ``cgroup.procs`` / ``tasks`` are handed to the instructor, and the server moves itself in
    (``singleuser_in_cgroup.sh``): on v1 a process may move itself into a cgroup whose procs file it
    can write, and may make children in a folder it owns.
cgroup v2 (``delegate_v2``)
    Two rules of the kernel (Documentation/admin-guide/cgroup-v2.rst) shape it. *No internal
    processes*: a cgroup other than the root that holds processes cannot give its children the
    memory and pids controllers, so the subtree is not made under the hub's own cgroup (the hub is
    in it) but under the root of the v2 mount: ``/sys/fs/cgroup/<cgroup_name>/<instructor>/server``,
    with ``+memory +pids`` (and ``+cpu +cpuset`` where the root has them) written into the
    ``cgroup.subtree_control`` of the root, of ``<cgroup_name>`` and of ``<instructor>``, in that
    order. ``<instructor>`` and its leaf ``server`` are handed over as the kernel documents for
    delegation: the folder and its ``cgroup.procs``, ``cgroup.threads`` and ``cgroup.subtree_control``
    are chowned to the instructor; ``memory.max`` and the other limits of ``<instructor>`` stay root's.
    *Delegation containment*: a process that is not root may move a process only if it can write
    ``cgroup.procs`` of the destination and of the common ancestor of source and destination. The
    server starts in the hub's cgroup, and the common ancestor of that and ``server`` is root's, so
    the server cannot move itself in. The hub does it as root: its spawner (``CourseSpawner`` in
    jupyterhub_config.py) runs ``enter_then`` in the forked child before it drops to the instructor's
    uid and execs, so the server is inside before it runs a line (no race, unlike writing the pid
    from the hub after the spawn; a ``pre_spawn_hook`` runs before the process exists, so it cannot
    move it). ``singleuser_in_cgroup.sh`` checks that it is there. The kit then makes each run's
    cgroup as a sibling of ``server`` under ``<instructor>``: the common ancestor is
    ``<instructor>``, whose ``cgroup.procs`` is the instructor's.

    A hybrid host (v1 controllers, an empty cgroup2 mount like the machines the kit is tested on) has
    no memory controller in v2: nothing is made there. The v2 path is checked on a fake cgroupfs only
    (tests/unit/sandbox/test_cgroups.py), not on a real v2 host.

``undelegate`` removes the folders of both (run cgroups first); the controllers enabled in the root's
``cgroup.subtree_control`` stay enabled (systemd may rely on them by then).
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from autograder.sandbox.cgroups import V1_CONTROLLERS, Layout, _read, _write

HANDED_OVER = ("cgroup.procs", "tasks")  # what the instructor writes its own pid into (v1)
V2_HANDED_OVER = ("cgroup.procs", "cgroup.threads", "cgroup.subtree_control")  # the kernel's delegation
V2_CONTROLLERS = ("memory", "pids", "cpu", "cpuset")
V2_REQUIRED = ("memory", "pids")
LEAF = "server"  # the v2 leaf the instructor's server runs in


def folders(name: str, user: str, layout: Layout | None = None) -> list[Path]:
    """The delegated folder in each v1 hierarchy (one per mount: cpu and cpuacct may share one), and in v2."""
    layout = layout or Layout.read()
    seen, out = set(), []
    for controller in V1_CONTROLLERS:
        mount = layout.v1_mounts.get(controller)
        if mount is None or mount in seen:
            continue
        seen.add(mount)
        out.append(mount / layout.v1_paths.get(controller, "/").lstrip("/") / name / user)
    if layout.v2_mount is not None:
        out.append(layout.v2_mount / name / user)
    return out


def delegate(name: str, user: str) -> list[Path]:
    """Make and hand over the v1 folders; the ``cgroup.procs`` files the server moves itself into."""
    account = pwd.getpwnam(user)
    procs = []
    for folder in folders(name, user, _v1_only(Layout.read())):
        for level in (folder.parent, folder):
            level.mkdir(exist_ok=True)
            if (level / "cpuset.cpus").exists():  # a new cpuset is empty: it takes its parent's CPUs and nodes
                for setting in ("cpuset.cpus", "cpuset.mems"):
                    (level / setting).write_text((level.parent / setting).read_text())
        for path in [folder, *(folder / f for f in HANDED_OVER if (folder / f).exists())]:
            os.chown(path, account.pw_uid, account.pw_gid)
        procs.append(folder / "cgroup.procs")
    return procs


def _v1_only(layout: Layout) -> Layout:
    return Layout(v1_mounts=layout.v1_mounts, v1_paths=layout.v1_paths)


def delegate_v2(name: str, user: str, layout: Layout | None = None) -> Path | None:
    """Make and hand over the v2 subtree; the leaf's ``cgroup.procs`` the hub moves the server into.

    None where v2 has no memory and pids controllers (a v1 or hybrid host), or where they cannot be
    enabled down the path (then what was made is removed and a warning printed: grading is refused
    by the kit later, or runs with ``--Sandbox.cgroups=off``).
    """
    layout = layout or Layout.read()
    if layout.v2_mount is None:
        return None
    base = layout.v2_mount
    wanted = [c for c in V2_CONTROLLERS if c in _read(base / "cgroup.controllers").split()]
    if not set(V2_REQUIRED) <= set(wanted):
        return None
    account = pwd.getpwnam(user)
    folder = base / name / user
    try:
        for level in (base, base / name, folder):
            if level != base:
                level.mkdir(exist_ok=True)
            wanted = _enable(level, wanted)
        (folder / LEAF).mkdir(exist_ok=True)
        for directory in (folder, folder / LEAF):
            for path in [directory, *(directory / f for f in V2_HANDED_OVER)]:
                os.chown(path, account.pw_uid, account.pw_gid)
    except OSError as exc:
        print(
            f"warning: cannot delegate a cgroup v2 subtree to {user} under {base / name}: {exc}",
            file=sys.stderr,
            flush=True,
        )
        undelegate(name, user, Layout(v2_mount=base))
        _rmdir(base / name)
        return None
    return folder / LEAF / "cgroup.procs"


def _enable(level: Path, wanted: list[str]) -> list[str]:
    """``+controller`` for each wanted one ``level`` does not give its children yet; what they get."""
    enabled = _read(level / "cgroup.subtree_control").split()
    missing = [c for c in wanted if c not in enabled]
    if missing:
        try:
            _write(level / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
        except OSError:  # cpu cannot be enabled while a realtime process is outside the root, for one
            required = [c for c in V2_REQUIRED if c not in enabled]
            if required:
                _write(level / "cgroup.subtree_control", " ".join(f"+{c}" for c in required))
            return [c for c in wanted if c in enabled or c in V2_REQUIRED]
    return wanted


def enter_then(procs: str, then):
    """A Popen ``preexec_fn``: move the forked child (still root) into ``procs``, then run ``then``
    (the spawner's own: become the user). A failed move raises, and the server does not start."""

    def preexec():
        fd = os.open(procs, os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
        then()

    return preexec


def undelegate(name: str, user: str, layout: Layout | None = None) -> None:
    """Remove the folders (the kit's run cgroups in them first); their processes must have ended."""
    for folder in folders(name, user, layout):
        if not folder.exists():
            continue
        for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(sub)
        _rmdir(folder)
        _rmdir(folder.parent)  # fails while another instructor's folder is in it: kept then


def _rmdir(path: Path) -> None:
    """cgroup folders are removed with rmdir (their files are not real files)."""
    try:
        path.rmdir()
    except OSError:
        pass
