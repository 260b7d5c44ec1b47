"""A cgroup subtree of the grading account's own, so that the sandbox can give each run its limits.

The sandbox makes each run's cgroup a child of the grading process's own (autograder/sandbox/cgroups.py).
On a hub the grader is the instructor's server, an unprivileged process, so root (the hub command)
makes ``<the hub's cgroup>/<CourseHub.cgroup_name>/<instructor>`` in each hierarchy, hands the folder and
its ``cgroup.procs`` / ``tasks`` to the instructor, and the server starts inside it
(``singleuser_in_cgroup.sh``). On cgroup v1 a process may move itself into a cgroup whose procs file
it can write, and may make children in a folder it owns. Students get nothing: their servers stay
where the hub is, and they can neither write these files nor signal the instructor's processes.

cgroup v2 hosts: the hub's service needs ``Delegate=yes`` (systemd) for the same folder to be handed
over; see the README. Only v1 is made here (the machines the kit is tested on have v1 only).
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from autograder.sandbox.cgroups import V1_CONTROLLERS, Layout

HANDED_OVER = ("cgroup.procs", "tasks")   # what the instructor writes its own pid into


def folders(name: str, user: str, layout: Layout | None = None) -> list[Path]:
    """The delegated folder in each v1 hierarchy (one per mount: cpu and cpuacct may share one)."""
    layout = layout or Layout.read()
    seen, out = set(), []
    for controller in V1_CONTROLLERS:
        mount = layout.v1_mounts.get(controller)
        if mount is None or mount in seen:
            continue
        seen.add(mount)
        out.append(mount / layout.v1_paths.get(controller, "/").lstrip("/") / name / user)
    return out


def delegate(name: str, user: str) -> list[Path]:
    """Make and hand over the folders; the ``cgroup.procs`` files the server moves itself into."""
    account = pwd.getpwnam(user)
    procs = []
    for folder in folders(name, user):
        for level in (folder.parent, folder):
            level.mkdir(exist_ok=True)
            if (level / "cpuset.cpus").exists():   # a new cpuset is empty: it takes its parent's CPUs and nodes
                for setting in ("cpuset.cpus", "cpuset.mems"):
                    (level / setting).write_text((level.parent / setting).read_text())
        for path in [folder, *(folder / f for f in HANDED_OVER if (folder / f).exists())]:
            os.chown(path, account.pw_uid, account.pw_gid)
        procs.append(folder / "cgroup.procs")
    return procs


def undelegate(name: str, user: str) -> None:
    """Remove the folders (the kit's run cgroups in them first); their processes must have ended."""
    for folder in folders(name, user):
        if not folder.exists():
            continue
        for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            _rmdir(sub)
        _rmdir(folder)
        _rmdir(folder.parent)   # fails while another instructor's folder is in it: kept then


def _rmdir(path: Path) -> None:
    """cgroup folders are removed with rmdir (their files are not real files)."""
    try:
        path.rmdir()
    except OSError:
        pass

