"""What a sandbox is made of: the bwrap command line and the filesystem view it gives student code.

The view: a read-only /usr, /bin, /lib*, /etc; the Python installation(s)
the kit runs on, bound on their own (a venv inside the repo shows only the
venv folder, never its siblings); the payload (runner.py + capture.py, and
the fences of the library internals they load, ``internals/<library>.py``) at
/opt/kit and the public splits at /opt/data, both copied in from file
descriptors (no host path of the kit or the job shows in the sandbox's mount
table); the home /home/student, a tmpfs of ``Sandbox.disk_mb`` that the
submission's files are copied into; private, size-capped tmpfs mounts at /tmp
and /dev/shm. Nothing of the host is writable, and the course root, the
kit's package and the host's /root, /home, /work, /tmp are not in it. The
seccomp filter (``seccomp.py``) applies to everything started inside.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from . import seccomp
from .limits import tool
from .spec import CAPTURE, INSIDE_DATA, INSIDE_HOME, INSIDE_KIT, INTERNALS, PAYLOAD_INTERNALS, RUNNER, RunSpec

KIT_PACKAGE = Path(__file__).resolve().parent.parent


def bwrap_path() -> str | None:
    return shutil.which("bwrap") if sys.platform.startswith("linux") else None


def host_python_roots() -> list[str]:
    """The Python installation(s) this process runs on, outermost folders only: what the sandbox binds read-only."""
    roots = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}
    roots = {os.path.realpath(r) for r in roots if r} | {r for r in roots if r}
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def view(spec: RunSpec, launch: Launch, python_roots: list[str] | None = None) -> list[str]:
    """bwrap's filesystem view: system and Python read-only, the home and /tmp size-capped tmpfs."""
    args = ["--proc", "/proc", "--dev", "/dev"]
    for path, mb in spec.writable_mb.items():
        args += ["--perms", "1777" if path != INSIDE_HOME else "0777", "--size", str(mb << 20), "--tmpfs", path]
    for system_dir in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
        if os.path.islink(system_dir):
            args += ["--symlink", os.readlink(system_dir), system_dir]
        elif os.path.isdir(system_dir):
            args += ["--ro-bind", system_dir, system_dir]
    roots = host_python_roots() if python_roots is None else python_roots
    for root in roots:
        args += ["--ro-bind", root, root]
    for root in roots:  # never show the kit's checks, even when it is installed into site-packages
        if is_within(str(KIT_PACKAGE), root):
            args += ["--tmpfs", str(KIT_PACKAGE)]
    args += [
        "--perms",
        "0555",
        "--ro-bind-data",
        launch.open(RUNNER),
        f"{INSIDE_KIT}/runner.py",
        "--perms",
        "0555",
        "--ro-bind-data",
        launch.open(CAPTURE),
        f"{INSIDE_KIT}/capture.py",
    ]
    for library in PAYLOAD_INTERNALS:
        args += [
            "--perms",
            "0555",
            "--ro-bind-data",
            launch.open(INTERNALS / f"{library}.py"),
            f"{INSIDE_KIT}/internals/{library}.py",
        ]
    if spec.data_file is not None:
        args += ["--perms", "0444", "--ro-bind-data", launch.open(spec.data_file), INSIDE_DATA]
    for name, source in spec.inputs.items():  # the submission, into the home
        args += ["--perms", "0666", "--file", launch.open(source), f"{INSIDE_HOME}/{name}"]
    return traversable_parents(args) + ["--chdir", INSIDE_HOME, "--hostname", "sandbox"]


_MOUNTS = {
    "--bind": 2,
    "--ro-bind": 2,
    "--symlink": 2,
    "--tmpfs": 1,
    "--proc": 1,
    "--dev": 1,
    "--dir": 1,
    "--ro-bind-data": 2,
    "--file": 2,
}


def traversable_parents(args: list[str]) -> list[str]:
    """Create the folders above each mount point as 0755 just before it is mounted.

    bwrap run by root makes missing parents 0700, which the student's uid cannot
    traverse; a tmpfs (say /tmp) hides folders made before it, so they are made
    again for mounts below it (a checkout under /tmp puts the venv there).
    """
    out: list[str] = []
    made: set[str] = set()
    pending: list[str] = []  # --perms / --size that belong to the next mount
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--perms", "--size"):
            pending += args[i : i + 2]
            i += 2
            continue
        if arg in _MOUNTS:
            width = _MOUNTS[arg]
            target = args[i + width]
            if arg in ("--tmpfs", "--proc", "--dev"):
                made = {m for m in made if not is_within(m, target)}
            for parent in reversed(Path(target).parents[:-1]):
                if str(parent) not in made:
                    made.add(str(parent))
                    out += ["--perms", "0755", "--dir", str(parent)]
            out += pending + args[i : i + width + 1]
            made.add(target)  # never made again below it (a --dir would not change a tmpfs' mode, but say so)
            pending = []
            i += width + 1
            continue
        out += pending + [arg]
        pending = []
        i += 1
    return out


@dataclass
class Launch:
    """A run's command line and the descriptors it inherits (the files bwrap copies in, the filter)."""

    argv: list[str]
    fds: list[int] = field(default_factory=list)

    def keep(self, fd: int) -> int:
        self.fds.append(fd)
        return fd

    def open(self, path: Path) -> str:
        """A descriptor of ``path`` for bwrap to copy from (read-only, never following a symlink)."""
        return str(self.keep(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)))

    def close(self) -> None:
        """Close this process's copies once the run has started (the run keeps its own)."""
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def command(spec: RunSpec, python_roots: list[str] | None = None) -> Launch:
    """Everything before the program to run: rlimits and CPUs, then bwrap with the spec's view, the uid drop."""
    if not spec.sandboxed:  # opted out: the rlimits and CPUs where the tools exist
        prlimit, taskset = shutil.which("prlimit"), shutil.which("taskset")
        return Launch(
            [
                *([prlimit, *_rlimit_options(spec), "--"] if prlimit else []),
                *([taskset, "--cpu-list", spec.cpus] if taskset else []),
            ]
        )
    prefix = [tool("prlimit"), *_rlimit_options(spec), "--", tool("taskset"), "--cpu-list", spec.cpus]
    launch = Launch([])
    try:
        drop = (
            []
            if spec.uid is None
            else [
                tool("setpriv"),
                f"--reuid={spec.uid}",
                f"--regid={spec.uid}",
                "--clear-groups",
                "--no-new-privs",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]
        )
        namespaces = ["--die-with-parent", "--new-session"]
        if spec.strategy == "privileged":
            namespaces += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        else:
            namespaces += ["--unshare-all", "--unshare-user", "--disable-userns"]
        if spec.seccomp:
            namespaces += ["--seccomp", str(launch.keep(seccomp.filter_fd()))]
        clean_env = ["--clearenv"]
        for key, value in spec.env.items():
            clean_env += ["--setenv", key, value]
        sandbox = [bwrap_path(), *namespaces, *view(spec, launch, python_roots), *clean_env]
        if spec.strategy == "privileged":
            launch.argv = [*prefix, *sandbox, *drop]
        elif spec.strategy == "drop-then-userns":
            launch.argv = [*prefix, *drop, *sandbox]
        else:
            launch.argv = [*prefix, *sandbox]
    except BaseException:
        launch.close()
        raise
    return launch


def _rlimit_options(spec: RunSpec) -> list[str]:
    return [f"--{name}={value}" for name, value in spec.rlimits.items()]
