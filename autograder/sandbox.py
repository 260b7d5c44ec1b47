"""Run the notebook runner isolated from the course, with limits.

The isolation is bubblewrap's (``bwrap``): new user, PID, network, IPC and
UTS namespaces, a read-only view of the system and the Python environment, and
one writable folder, the submission's scratch copy. The course root
(solutions, hidden checks, hidden data, gradebook, other students) is simply
not in that view. Wall time is enforced here; memory by a watchdog on the
sandbox's process tree; output size by cutting the executed notebook.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .settings import Sandbox

RUNNER = Path(__file__).with_name("runner.py")
CAPTURE = Path(__file__).with_name("capture.py")
INSIDE_HOME = "/home/student"
INSIDE_KIT = "/opt/kit"
INSIDE_DATA = "/opt/data/public_splits.tsv"


class SandboxUnavailable(RuntimeError):
    """No sandbox can be made here and the course did not opt out."""


@dataclass
class RunOutcome:
    status: str                   # ok, timeout, out_of_memory, too_much_output, kernel_died, error, no_output
    message: str = ""
    sandboxed: bool = True
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    capture_errors: list = field(default_factory=list)


def bwrap_path() -> str | None:
    return shutil.which("bwrap") if sys.platform.startswith("linux") else None


def check_available(settings: Sandbox) -> None:
    if settings.mode == "none":
        return
    if not bwrap_path():
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so student code cannot be isolated. "
            "Install it (Debian/Ubuntu: apt-get install bubblewrap; the README's setup does), "
            "or opt out knowingly with --Sandbox.mode=none (every result is then marked unsandboxed)."
        )
    probe = subprocess.run([*_bwrap_args(Path("/tmp"), None), "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap is installed but cannot create a sandbox here: {probe.stderr.strip()}")


def _python_roots() -> list[str]:
    roots = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]}
    return sorted(r for r in roots if r and not any(r != o and r.startswith(o + os.sep) for o in roots))


def _bwrap_args(scratch: Path, data_file: Path | None) -> list[str]:
    args = [bwrap_path(), "--die-with-parent", "--new-session", "--unshare-all",
            "--hostname", "sandbox", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for system_dir in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc"):
        if os.path.exists(system_dir):
            args += ["--ro-bind", system_dir, system_dir]
    for root in _python_roots():
        args += ["--ro-bind", root, root]
    args += ["--bind", str(scratch), INSIDE_HOME,
             "--ro-bind", str(RUNNER), f"{INSIDE_KIT}/runner.py",
             "--ro-bind", str(CAPTURE), f"{INSIDE_KIT}/capture.py"]
    if data_file is not None:
        args += ["--ro-bind", str(data_file), INSIDE_DATA]
    return args + ["--chdir", INSIDE_HOME]


def _environment(settings: Sandbox, home: str, data_file: str, extra: dict) -> dict:
    threads = str(settings.cpu_threads)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "MPLBACKEND": "agg",
        "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter-runtime",
        "IPYTHONDIR": f"{home}/.ipython",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "NBGRADER_EXECUTION": "autograde",
        "SPAM_LAB_SPLITS": data_file,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _tree_rss(proc: psutil.Process) -> float:
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total / 2**20


def _kill_tree(popen: subprocess.Popen) -> None:
    try:
        os.killpg(popen.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_notebook(notebook: Path, scratch: Path, data_file: Path, settings: Sandbox, env: dict) -> RunOutcome:
    """Execute ``scratch/notebook`` (already copied there) and capture evidence.

    Writes ``executed.ipynb``, ``run.json`` and ``evidence/`` into scratch.
    """
    sandboxed = settings.mode != "none"
    if sandboxed:
        home, kit, data = INSIDE_HOME, INSIDE_KIT, INSIDE_DATA
        prefix = _bwrap_args(scratch, data_file) + ["--clearenv"]
        for key, value in _environment(settings, home, data, env).items():
            prefix += ["--setenv", key, value]
        command = [*prefix, sys.executable, f"{kit}/runner.py"]
        popen_env = None
    else:
        home, kit, data = str(scratch), str(RUNNER.parent), str(data_file)
        command = [sys.executable, str(RUNNER)]
        popen_env = {**_environment(settings, home, data, env), "PATH": os.environ.get("PATH", "")}
    command += [f"{home}/{notebook.name}", f"{home}/executed.ipynb", str(settings.cell_timeout), f"{kit}/capture.py"]

    start = time.monotonic()
    peak = 0.0
    status, message, capture_errors = None, "", []
    log = (scratch / "runner.log").open("wb")
    popen = subprocess.Popen(command, cwd=scratch, env=popen_env, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    proc = psutil.Process(popen.pid)
    while popen.poll() is None:
        peak = max(peak, _tree_rss(proc))
        elapsed = time.monotonic() - start
        if peak > settings.memory_mb:
            status, message = "out_of_memory", f"used more than {settings.memory_mb} MB of memory"
        elif elapsed > settings.notebook_timeout:
            status, message = "timeout", f"did not finish within {settings.notebook_timeout} s"
        if status:
            _kill_tree(popen)
            break
        time.sleep(0.2)
    popen.wait()
    _kill_tree(popen)  # anything the notebook left running
    log.close()
    seconds = time.monotonic() - start

    run_file = scratch / "run.json"
    executed = scratch / "executed.ipynb"
    if status is None:
        if run_file.is_file() and executed.is_file():
            try:
                run = json.loads(run_file.read_text(encoding="utf-8")[:100_000])
                status, message = str(run.get("status", "error")), str(run.get("message", ""))[:2000]
                capture_errors = [str(e)[:500] for e in run.get("capture_errors", [])][:10]
            except (ValueError, AttributeError):
                status, message = "error", "the runner's report was not valid"
        else:
            tail = (scratch / "runner.log").read_bytes()[-1500:].decode("utf-8", "replace")
            status, message = "no_output", f"the notebook run stopped without a result (exit {popen.returncode}): {tail}"
    if status == "ok" and executed.is_file() and executed.stat().st_size > settings.max_output_bytes + 5_000_000:
        status, message = "too_much_output", f"the notebook printed more than {settings.max_output_bytes} bytes"
    return RunOutcome(status=status, message=message, sandboxed=sandboxed, seconds=round(seconds, 2),
                      peak_rss_mb=round(peak, 1),
                      capture_errors=capture_errors)
