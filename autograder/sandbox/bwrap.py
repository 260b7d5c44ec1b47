"""What a sandbox is made of: the bwrap command line and the filesystem view it gives student code.

The view: a read-only /usr, /bin, /lib*, /etc; the Python installation(s)
the kit runs on, bound on their own (a venv inside the repo shows only the
venv folder, never its siblings); the payload (runner.py + capture.py) at
/opt/kit; the public splits file at /opt/data; the submission's scratch copy
at /home/student (the only writable folder); private, size-capped tmpfs
mounts at /tmp and /dev/shm. The course root, the kit's package and the
host's /root, /home, /work, /tmp are not in it.
"""

from __future__ import annotations

import os
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from ..settings import Sandbox
from .limits import rlimits, slot_cpus, slot_uid, tool

PAYLOAD = Path(__file__).resolve().parent / "payload"
RUNNER = PAYLOAD / "runner.py"
CAPTURE = PAYLOAD / "capture.py"
KIT_PACKAGE = Path(__file__).resolve().parent.parent
INSIDE_HOME = "/home/student"
INSIDE_KIT = "/opt/kit"
INSIDE_DATA = "/opt/data/public_splits.tsv"
TMPFS_MB = 256                 # size of the sandbox's private /tmp and /dev/shm each


def bwrap_path() -> str | None:
    return shutil.which("bwrap") if sys.platform.startswith("linux") else None


def host_python_roots() -> list[str]:
    """The Python installation(s) this process runs on, outermost folders only: what the sandbox binds read-only."""
    roots = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}
    roots = {os.path.realpath(r) for r in roots if r} | {r for r in roots if r}
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def view(scratch: Path, data_file: Path | None, python_roots: list[str] | None = None) -> list[str]:
    """bwrap's filesystem view: system and Python read-only, scratch writable."""
    args = ["--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(TMPFS_MB << 20), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(TMPFS_MB << 20), "--tmpfs", "/dev/shm"]
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
    args += ["--bind", str(scratch), INSIDE_HOME,
             "--ro-bind", str(RUNNER), f"{INSIDE_KIT}/runner.py",
             "--ro-bind", str(CAPTURE), f"{INSIDE_KIT}/capture.py"]
    if data_file is not None:
        args += ["--ro-bind", str(data_file), INSIDE_DATA]
    return traversable_parents(args) + ["--chdir", INSIDE_HOME, "--hostname", "sandbox"]


_MOUNTS = {"--bind": 2, "--ro-bind": 2, "--symlink": 2, "--tmpfs": 1, "--proc": 1, "--dev": 1, "--dir": 1}


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
            pending += args[i:i + 2]
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
            out += pending + args[i:i + width + 1]
            pending = []
            i += width + 1
            continue
        out += pending + [arg]
        pending = []
        i += 1
    return out


def command(strategy: str, slot: int, scratch: Path, data_file: Path, settings: Sandbox, env: dict,
             python_roots: list[str] | None = None, uid: int | None = None) -> list[str]:
    """Everything before the program to run in the sandbox (``uid``: who runs it, default us)."""
    prefix = [*rlimits(settings, strategy, uid), tool("taskset"), "--cpu-list", slot_cpus(slot, settings.threads)]
    own = slot_uid(slot)
    drop = [] if strategy == "userns" else [
        tool("setpriv"), f"--reuid={own}", f"--regid={own}", "--clear-groups", "--no-new-privs",
        "--inh-caps=-all", "--bounding-set=-all", "--"]
    namespaces = ["--die-with-parent", "--new-session"]
    if strategy == "privileged":
        namespaces += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        namespaces += ["--unshare-all", "--unshare-user", "--disable-userns"]
    clean_env = ["--clearenv"]
    for key, value in env.items():
        clean_env += ["--setenv", key, value]
    sandbox = [bwrap_path(), *namespaces, *view(scratch, data_file, python_roots), *clean_env]
    if strategy == "privileged":
        return [*prefix, *sandbox, *drop]
    if strategy == "drop-then-userns":
        return [*prefix, *drop, *sandbox]
    return [*prefix, *sandbox]


def prepare_scratch(scratch: Path, strategy: str, slot: int) -> None:
    """The sandbox's uid must own its scratch folder (it owns nothing else)."""
    if strategy in ("privileged", "drop-then-userns"):
        uid = slot_uid(slot)
        for folder, dirs, files in os.walk(scratch):
            os.chown(folder, uid, uid)
            for name in dirs + files:
                os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)
        if strategy == "drop-then-userns":  # bwrap itself runs as that uid and must reach the folder
            for parent in scratch.parents:
                if parent == Path(tempfile.gettempdir()) or parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o711)


def environment(settings: Sandbox, home: str, data_file: str, extra: dict) -> dict:
    threads = str(settings.threads)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        # No MPLBACKEND: ipykernel then sets matplotlib_inline's backend, as in plain nbgrader, so the
        # student's plots are kept as image/png outputs of the executed notebook. The font cache is
        # built in the scratch folder on the first pyplot import (about 0.1 s with the system's fonts).
        "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter-runtime",
        "IPYTHONDIR": f"{home}/.ipython",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
        "NBGRADER_EXECUTION": "autograde",
        "SPAM_LAB_SPLITS": data_file,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env
