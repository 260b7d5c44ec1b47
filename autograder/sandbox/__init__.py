"""Run the notebook runner isolated from the course, with limits.

Student code runs in ``runner.py`` (nbgrader's Execute + the capture cell)
inside bubblewrap (``bwrap``). What the sandbox sees: a read-only /usr, /bin,
/lib*, /etc, the Python installation(s) the kit runs on (``sys.prefix`` and
``sys.base_prefix``, bound on their own: when the venv lives inside the repo,
only the venv folder appears, never its siblings), runner.py + capture.py at
/opt/kit, the public splits file at /opt/data, the submission's scratch copy
at /home/student (the only writable folder) and private, size-capped tmpfs
mounts at /tmp and /dev/shm. The course root (solutions, hidden checks, hidden
split, gradebook, other students, .kit/) and the host's /root, /home, /work,
/tmp are not in that view; if the kit's own package folder lies inside a bound
Python tree (a non-editable install), a tmpfs is mounted over it, and a Python
tree that holds the kit's whole checkout is refused.

How the sandbox is made depends on who grades (first that works, probed once
per process by :func:`check_available`, which :func:`run_notebook` calls before
anything runs; when none works, every submission fails with the same
``SandboxUnavailable`` and no result is stored):

``privileged`` (grader is root)
    bwrap runs as root without a user namespace, then ``setpriv`` drops the
    student's processes to a uid of their own (``SANDBOX_UID_BASE + slot``,
    no account, no capabilities, no_new_privs). Real uid 0 would make the
    kernel ignore RLIMIT_NPROC, also inside a user namespace mapped to root.
``drop-then-userns`` (root, bwrap cannot mount without a user namespace)
    ``setpriv`` to that uid first, then unprivileged bwrap.
``userns`` (grader is not root)
    unprivileged bwrap with ``--unshare-user --disable-userns``.

Limits and what enforces them (all reported per student; the batch goes on):

=====================  ==============================================================
notebook_timeout       wall clock of the watchdog below: kill, status ``timeout``
cell_timeout           nbclient (nbgrader Execute, interrupt_on_timeout): the cell
                       gets a CellTimeoutError and the run goes on; a kernel that
                       ignores the interrupt ends the run with status ``timeout``
memory_mb              watchdog: resident memory of the whole process tree (PSS
                       when RSS over-counts shared pages, e.g. after fork):
                       kill, status ``out_of_memory``; plus RLIMIT_DATA of 1.5 x
                       memory_mb per process (prlimit) so a single huge allocation
                       fails at once with MemoryError. RLIMIT_AS is not used:
                       TensorFlow reserves far more address space than it uses
                       (reference run: VmPeak 2.3 GB, VmData 0.63 GB, RSS 0.7 GB).
max_processes          RLIMIT_NPROC (prlimit) for the sandbox's own uid / user
                       namespace, so fork() fails past it; the watchdog kills a
                       tree that reaches it: status ``too_many_processes``
max_output_bytes       runner.py: outputs past it are dropped while the kernel
                       runs (a marker says so), and at 10 x the kernel is killed:
                       status ``too_much_output``; the executed notebook is
                       size-checked again before the grader reads it
disk_mb                RLIMIT_FSIZE per file (prlimit) + the watchdog's walk of
                       the scratch folder: kill, status ``too_much_disk``;
                       /tmp and /dev/shm are tmpfs capped at TMPFS_MB each
cpu_threads            ``taskset`` pins the tree to that many CPUs (one slot per
                       concurrent sandbox) + OMP/BLAS/TF thread variables
network                a new, empty network namespace (loopback only)
=====================  ==============================================================

After the run every process of the sandbox is gone (PID namespace), and only
``run.json``, ``executed.ipynb`` and ``evidence/{evidence.json,
model.weights.h5}`` are copied, as size-capped regular files opened without
following symlinks, into a fresh scratch folder; everything else the student
left behind (planted symlinks, pytest.py, conftest.py, ...) stays in the
discarded ``untrusted`` folder.

``Sandbox.mode = "none"`` runs the same runner without isolation (the watchdog's
wall time, memory, process-count and disk limits, the rlimits where ``prlimit``
exists, CPU pinning and the output cap still apply; RLIMIT_NPROC does not bind
root); every result is then marked ``sandboxed: false``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from ..settings import Sandbox

RUNNER = Path(__file__).parent / "payload" / "runner.py"
CAPTURE = Path(__file__).parent / "payload" / "capture.py"
KIT_PACKAGE = Path(__file__).resolve().parent.parent
INSIDE_HOME = "/home/student"
INSIDE_KIT = "/opt/kit"
INSIDE_DATA = "/opt/data/public_splits.tsv"

SANDBOX_UID_BASE = 3_900_000  # + slot: one uid per concurrent sandbox, no account uses these
MAX_SLOTS = 256
TMPFS_MB = 256                 # size of the sandbox's private /tmp and /dev/shm each
POLL_SECONDS = 0.1
DISK_POLL_SECONDS = 1.0
MAX_SCRATCH_ENTRIES = 20_000   # more files than this in scratch counts as too much disk
LOG_TAIL_BYTES = 8_000
STATUSES = {"ok", "timeout", "out_of_memory", "too_many_processes", "too_much_output", "too_much_disk",
            "kernel_died", "error", "no_output"}
# What crosses back from the sandbox, with the largest size accepted.
RESULT_FILES = {"run.json": 100_000, "evidence/evidence.json": 5_000_000, "evidence/model.weights.h5": 50_000_000}


class SandboxUnavailable(RuntimeError):
    """No sandbox can be made here and the course did not opt out."""


@dataclass
class RunOutcome:
    status: str                   # one of STATUSES
    message: str = ""
    sandboxed: bool = True
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    capture_errors: list = field(default_factory=list)


# --- how to build a sandbox here -------------------------------------------------------------------

_STRATEGY: dict = {}   # mode -> strategy, or the SandboxUnavailable raised (checked once per process)


def bwrap_path() -> str | None:
    return shutil.which("bwrap") if sys.platform.startswith("linux") else None


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise SandboxUnavailable(f"`{name}` (util-linux) is needed to enforce the sandbox's limits but is not on PATH")
    return path


def _strategies() -> list[str]:
    return ["privileged", "drop-then-userns"] if os.geteuid() == 0 else ["userns"]


def check_available(settings: Sandbox) -> str:
    """The way sandboxes are made here; raises SandboxUnavailable if there is none.

    Probed once per process by starting the real sandbox with the kit's Python.
    Returns "none" when the course opted out.
    """
    if settings.mode == "none":
        return "none"
    if settings.mode not in _STRATEGY:
        try:
            _STRATEGY[settings.mode] = _find_strategy(settings)
        except SandboxUnavailable as exc:
            _STRATEGY[settings.mode] = exc
    found = _STRATEGY[settings.mode]
    if isinstance(found, SandboxUnavailable):
        raise found
    return found


def exposed_checkout(python_roots: list[str]) -> str | None:
    """The Python tree that would show the kit's checkout (solutions, checks) to the sandbox, if any.

    A venv inside the repo is fine (only the venv folder is bound); the repo inside a
    bound Python tree (say, a venv made in the repo root) is not.
    """
    checkout = KIT_PACKAGE.parent
    if not (checkout / "pyproject.toml").is_file():  # installed into site-packages: masked by a tmpfs
        return None
    return next((root for root in python_roots if _is_within(str(checkout), root)), None)


def _find_strategy(settings: Sandbox) -> str:
    exposing = exposed_checkout(_python_roots())
    if exposing:
        raise SandboxUnavailable(
            f"the Python environment {exposing} contains the kit's checkout {KIT_PACKAGE.parent}; binding it "
            "into the sandbox would show the course to student code. Use a venv in its own folder "
            "(e.g. <checkout>/.venv) or opt out knowingly with --Sandbox.mode=none."
        )
    if not bwrap_path():
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed (or this is not Linux), so student code cannot be isolated. "
            "Install it (Debian/Ubuntu: apt-get install bubblewrap; the README's setup does), "
            "or opt out knowingly with --Sandbox.mode=none (every result is then marked unsandboxed)."
        )
    for name in ("prlimit", "setpriv", "taskset") if os.geteuid() == 0 else ("prlimit", "taskset"):
        _tool(name)
    failures = []
    with tempfile.TemporaryDirectory(prefix="spamkit-probe-") as tmp:
        scratch = Path(tmp) / "work"
        scratch.mkdir()
        data = Path(tmp) / "data.tsv"
        data.write_text("probe\n", encoding="utf-8")
        data.chmod(0o644)
        probe = "import ipykernel, nbclient, nbgrader; open('probe', 'w').write('ok')"
        for strategy in _strategies():
            with _Slot() as slot:
                _prepare_scratch(scratch, strategy, slot)
                env = _environment(settings, INSIDE_HOME, INSIDE_DATA, {})
                command = _command(strategy, slot, scratch, data, settings, env) + [sys.executable, "-c", probe]
                proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
            if proc.returncode == 0 and (scratch / "probe").is_file():
                return strategy
            failures.append(f"{strategy}: {(proc.stderr or proc.stdout).strip()[-500:] or f'exit {proc.returncode}'}")
    raise SandboxUnavailable(
        "bubblewrap is installed but cannot create a sandbox here (" + "; ".join(failures) + "). "
        "In a container it needs CAP_SYS_ADMIN or unprivileged user namespaces; "
        "or opt out knowingly with --Sandbox.mode=none."
    )


class _Slot:
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


def _slot_uid(slot: int) -> int:
    return SANDBOX_UID_BASE + slot


def _slot_cpus(slot: int, threads: int) -> str:
    allowed = sorted(os.sched_getaffinity(0))
    count = max(1, min(threads, len(allowed)))
    return ",".join(str(allowed[(slot * count + i) % len(allowed)]) for i in range(count))


def _python_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}
    roots = {os.path.realpath(r) for r in roots if r} | {r for r in roots if r}
    return sorted(r for r in roots if not any(r != o and r.startswith(o + os.sep) for o in roots))


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _view(scratch: Path, data_file: Path | None, python_roots: list[str] | None = None) -> list[str]:
    """bwrap's filesystem view: system and Python read-only, scratch writable."""
    args = ["--proc", "/proc", "--dev", "/dev",
            "--perms", "1777", "--size", str(TMPFS_MB << 20), "--tmpfs", "/tmp",
            "--perms", "1777", "--size", str(TMPFS_MB << 20), "--tmpfs", "/dev/shm"]
    for system_dir in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc"):
        if os.path.islink(system_dir):
            args += ["--symlink", os.readlink(system_dir), system_dir]
        elif os.path.isdir(system_dir):
            args += ["--ro-bind", system_dir, system_dir]
    roots = _python_roots() if python_roots is None else python_roots
    for root in roots:
        args += ["--ro-bind", root, root]
    for root in roots:  # never show the kit's checks, even when it is installed into site-packages
        if _is_within(str(KIT_PACKAGE), root):
            args += ["--tmpfs", str(KIT_PACKAGE)]
    args += ["--bind", str(scratch), INSIDE_HOME,
             "--ro-bind", str(RUNNER), f"{INSIDE_KIT}/runner.py",
             "--ro-bind", str(CAPTURE), f"{INSIDE_KIT}/capture.py"]
    if data_file is not None:
        args += ["--ro-bind", str(data_file), INSIDE_DATA]
    return _traversable_parents(args) + ["--chdir", INSIDE_HOME, "--hostname", "sandbox"]


_MOUNTS = {"--bind": 2, "--ro-bind": 2, "--symlink": 2, "--tmpfs": 1, "--proc": 1, "--dev": 1, "--dir": 1}


def _traversable_parents(args: list[str]) -> list[str]:
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
                made = {m for m in made if not _is_within(m, target)}
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


def _limits(settings: Sandbox, strategy: str, uid: int | None = None) -> list[str]:
    nproc = settings.max_processes
    uid = os.getuid() if uid is None else uid
    if strategy in ("userns", "none") and uid != 0:  # the user's other processes count too
        nproc += sum(p.info["num_threads"] or 0 for p in psutil.process_iter(["uids", "num_threads"])
                     if p.info["uids"] and p.info["uids"].real == uid)
    data = int(settings.memory_mb * 1.5) << 20
    return [_tool("prlimit"), f"--nproc={nproc}", f"--data={data}", f"--fsize={settings.disk_mb << 20}",
            "--core=0", "--"]


def _command(strategy: str, slot: int, scratch: Path, data_file: Path, settings: Sandbox, env: dict,
             python_roots: list[str] | None = None, uid: int | None = None) -> list[str]:
    """Everything before the program to run in the sandbox (``uid``: who runs it, default us)."""
    prefix = [*_limits(settings, strategy, uid), _tool("taskset"), "--cpu-list", _slot_cpus(slot, settings.cpu_threads)]
    own = _slot_uid(slot)
    drop = [] if strategy == "userns" else [
        _tool("setpriv"), f"--reuid={own}", f"--regid={own}", "--clear-groups", "--no-new-privs",
        "--inh-caps=-all", "--bounding-set=-all", "--"]
    namespaces = ["--die-with-parent", "--new-session"]
    if strategy == "privileged":
        namespaces += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    else:
        namespaces += ["--unshare-all", "--unshare-user", "--disable-userns"]
    environment = ["--clearenv"]
    for key, value in env.items():
        environment += ["--setenv", key, value]
    sandbox = [bwrap_path(), *namespaces, *_view(scratch, data_file, python_roots), *environment]
    if strategy == "privileged":
        return [*prefix, *sandbox, *drop]
    if strategy == "drop-then-userns":
        return [*prefix, *drop, *sandbox]
    return [*prefix, *sandbox]


def _prepare_scratch(scratch: Path, strategy: str, slot: int) -> None:
    """The sandbox's uid must own its scratch folder (it owns nothing else)."""
    if strategy in ("privileged", "drop-then-userns"):
        uid = _slot_uid(slot)
        for folder, dirs, files in os.walk(scratch):
            os.chown(folder, uid, uid)
            for name in dirs + files:
                os.chown(os.path.join(folder, name), uid, uid, follow_symlinks=False)
        if strategy == "drop-then-userns":  # bwrap itself runs as that uid and must reach the folder
            for parent in scratch.parents:
                if parent == Path(tempfile.gettempdir()) or parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o711)


def _environment(settings: Sandbox, home: str, data_file: str, extra: dict) -> dict:
    threads = str(settings.cpu_threads)
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


# --- watching the run ------------------------------------------------------------------------------

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


class _Tail(threading.Thread):
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


def _watch(popen: subprocess.Popen, scratch: Path, settings: Sandbox) -> tuple[str | None, str, float]:
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
            status, message = "too_many_processes", f"started {tasks} processes and threads (limit {settings.max_processes})"
        elif memory > settings.memory_mb:
            status, message = "out_of_memory", f"used more than {settings.memory_mb} MB of memory"
        elif now - start > settings.notebook_timeout:
            status, message = "timeout", f"did not finish within {settings.notebook_timeout} s"
        elif now >= next_disk:
            next_disk = now + DISK_POLL_SECONDS
            if _disk_mb(scratch, MAX_SCRATCH_ENTRIES) > settings.disk_mb:
                status, message = "too_much_disk", f"wrote more than {settings.disk_mb} MB (or {MAX_SCRATCH_ENTRIES} files)"
        if status:
            break
        time.sleep(POLL_SECONDS)
    _stop(popen, proc)
    return status, message, peak


# --- bringing results back -------------------------------------------------------------------------

def _read_untrusted(base: Path, relpath: str, max_bytes: int) -> tuple[bytes | None, str]:
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


def _collect(scratch: Path, max_notebook_bytes: int) -> tuple[Path, dict]:
    """Move what the run left to ``untrusted`` and copy back only the result files."""
    untrusted = scratch.with_name("untrusted")
    os.rename(scratch, untrusted)
    scratch.mkdir(mode=0o700)
    problems = {}
    for relpath, max_bytes in {**RESULT_FILES, "executed.ipynb": max_notebook_bytes}.items():
        data, problem = _read_untrusted(untrusted, relpath, max_bytes)
        if data is None:
            problems[relpath] = problem
            continue
        target = scratch / relpath
        target.parent.mkdir(exist_ok=True)
        target.write_bytes(data)
    return untrusted, problems


def _report(scratch: Path) -> tuple[str, str, list]:
    try:
        run = json.loads((scratch / "run.json").read_text(encoding="utf-8"))
        status = str(run.get("status", "error"))
        errors = run.get("capture_errors", [])
        return (status if status in STATUSES else "error", str(run.get("message", ""))[:2000],
                [str(e)[:500] for e in (errors if isinstance(errors, list) else [])][:10])
    except (OSError, ValueError, AttributeError):
        return "error", "the runner's report was not valid", []


# --- the entry point -------------------------------------------------------------------------------

def run_notebook(notebook: Path, scratch: Path, data_file: Path, settings: Sandbox, env: dict) -> RunOutcome:
    """Execute ``scratch/notebook`` (already copied there) and capture evidence.

    Afterwards ``scratch`` holds only the checked result files: ``executed.ipynb``,
    ``run.json`` and ``evidence/``.
    """
    strategy = check_available(settings)
    sandboxed = strategy != "none"
    max_notebook_bytes = notebook.stat().st_size + settings.max_output_bytes + 1_000_000
    runner_args = [str(settings.cell_timeout), str(settings.max_output_bytes)]
    with _Slot() as slot:
        if sandboxed:
            home, kit, data = INSIDE_HOME, INSIDE_KIT, INSIDE_DATA
            if not os.stat(data_file).st_mode & stat.S_IROTH:  # the sandbox's uid must read it
                data_file = Path(shutil.copy(data_file, scratch.with_name("public_splits.tsv")))
                data_file.chmod(0o644)
            _prepare_scratch(scratch, strategy, slot)
            command = _command(strategy, slot, scratch, data_file, settings, _environment(settings, home, data, env))
            popen_env = None
        else:
            home, kit, data = str(scratch), str(RUNNER.parent), str(data_file)
            command = [*_limits_if_possible(settings), *_pin_if_possible(slot, settings)]
            popen_env = {**_environment(settings, home, data, env), "PATH": os.environ.get("PATH", "")}
        command += [sys.executable, f"{kit}/runner.py", f"{home}/{notebook.name}", f"{home}/executed.ipynb",
                    runner_args[0], f"{kit}/capture.py", runner_args[1]]

        start = time.monotonic()
        popen = subprocess.Popen(command, cwd=scratch, env=popen_env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        tail = _Tail(popen.stdout)
        tail.start()
        status, message, peak = _watch(popen, scratch, settings)
        tail.join(timeout=5)
        seconds = time.monotonic() - start

    untrusted, problems = _collect(scratch, max_notebook_bytes)
    capture_errors: list = []
    if status is None:
        if problems.get("executed.ipynb") == "too big":
            status, message = "too_much_output", f"the executed notebook is larger than {max_notebook_bytes} bytes"
        elif "run.json" not in problems and "executed.ipynb" not in problems:
            status, message, capture_errors = _report(scratch)
        else:
            status = "no_output"
            message = f"the notebook run stopped without a result (exit {popen.returncode}): {tail.text()[-1500:]}"
    shutil.rmtree(untrusted, ignore_errors=True)
    return RunOutcome(status=status, message=message, sandboxed=sandboxed, seconds=round(seconds, 2),
                      peak_rss_mb=round(peak, 1), capture_errors=capture_errors)


def _limits_if_possible(settings: Sandbox) -> list[str]:
    """Unsandboxed runs keep the rlimits where prlimit exists (RLIMIT_NPROC means nothing for root)."""
    return _limits(settings, "none") if shutil.which("prlimit") else []


def _pin_if_possible(slot: int, settings: Sandbox) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "--cpu-list", _slot_cpus(slot, settings.cpu_threads)] if taskset else []
