"""The warm process that runs the hidden checks.

Importing TensorFlow, running the lab's given code, adapting the tokenizer
and starting pytest take seconds, the same seconds for every submission of a
job. So each grading process (nbgrader's autograde, or a Dask worker) keeps
one long-lived child, ``python -m autograder.grading.check_process``, that does this
once and then, per submission, scores the saved weights on the validation and
hidden test splits (``reevaluate.py``) and runs the hidden checks
(``pytest autograder/grading/checks``) in-process on the evidence and those
figures. ``check_in_child`` is the one way in: it uses this process's warm child
for the job and falls back to a fresh pytest.

The child runs outside the sandbox (it holds the hidden test split); it only reads
the evidence (JSON, checked against a schema, and an HDF5 weights file that
``weights_check.py`` walks before Keras reads it). Since libhdf5 parses that
student-made file in it, it gets none of the grader's environment (no database
URL, no LMS token) and a memory limit of its own (``Grading.check_memory_mb``):
a cgroup where the host lets the grader make one, else RLIMIT_DATA (prlimit;
RLIMIT_AS is unusable with TensorFlow's address space reservations). If it
crashes, runs out of memory or hangs on one submission, it is killed, that
submission's checks run in a fresh pytest process without the grader's figures
(its AUC checks then report a grader error that says why), and the next
submission starts a new child.
Protocol: JSON lines on stdin, answers on a private copy of stdout (stray
prints of TensorFlow and pytest go to stderr); the child exits when stdin
closes, so it never outlives its parent.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import CheckProcessFailed
from ..sandbox import cgroups

KIT_ROOT = Path(__file__).resolve().parent.parent.parent
CHECKS_DIR = Path(__file__).with_name("checks")
PYTEST_ARGS = [str(CHECKS_DIR), "-q", "-p", "no:cacheprovider", "--rootdir", str(CHECKS_DIR), "-W", "ignore"]
START_TIMEOUT = 300
OUT_OF_MEMORY = 75  # the child's exit status when it ran out of memory under its RLIMIT_DATA
CGROUP_SLOTS = itertools.count(10_000)  # cgroup names of check processes, apart from the sandboxes' slots
MAX_CHECK_TASKS = 1024  # processes and threads of one check process (its limit that matters is memory)
_CGROUP_HOST: dict = {}  # "host" -> cgroups.Host or None (probed once per process)


def check_env(cpu_threads: int) -> dict:
    """Environment of a check process: the kit importable, TensorFlow quiet and on the CPU threads it is given.

    Nothing else of the grader's environment: the process parses a student's weights file, and the
    grader's may hold secrets (a database URL with its password, an LMS token, cloud keys).
    """
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(Path.home()),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        **{name: os.environ[name] for name in ("TMPDIR",) if name in os.environ},  # where the kit's temp files go
        "PYTHONPATH": os.pathsep.join([str(KIT_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        # the checks need no third-party pytest plugin: none is looked up (entry points) or loaded per session
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        # as many threads as the student's run gets: parallel workers must not oversubscribe the cores
        **{
            name: str(cpu_threads)
            for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        },
    }


def memory_cgroup(memory_mb: int) -> cgroups.Cgroup | None:
    """A cgroup that holds a check process to ``memory_mb``, or None where the host gives the grader none."""
    if "host" not in _CGROUP_HOST:
        _CGROUP_HOST["host"] = cgroups.probe()
    host = _CGROUP_HOST["host"]
    if host is None:
        return None
    cpus = sorted(os.sched_getaffinity(0))
    try:
        return host.create(
            next(CGROUP_SLOTS), cgroups.Limits(memory_mb, MAX_CHECK_TASKS, ",".join(map(str, cpus)), len(cpus))
        )
    except OSError:
        return None


class CheckProcess:
    """One warm check process for one job (its given code and data splits)."""

    def __init__(self, job_context: dict, cpu_threads: int):
        self.job_context = job_context
        self.cpu_threads = cpu_threads
        self.memory_mb = job_context["check_memory_mb"]
        self._proc: subprocess.Popen | None = None
        self._group: cgroups.Cgroup | None = None
        self._lock = threading.Lock()

    def run(self, context_file: Path, results_file: Path, cwd: Path, timeout: float) -> None:
        """Regrade and run the checks of one submission; the records land in ``results_file``."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            self._exchange({"context": str(context_file), "results": str(results_file), "cwd": str(cwd)}, timeout)

    def start(self) -> None:
        """Start the child and let it get ready (TensorFlow, given code, tokenizer) now, not at the first request."""
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()

    def _start(self) -> None:
        self.close()  # a child that died leaves its cgroup
        command = [sys.executable, "-m", "autograder.grading.check_process"]
        self._group, prlimit = memory_cgroup(self.memory_mb), shutil.which("prlimit")
        if self._group is not None:
            command = self._group.wrap(command)
        elif prlimit:
            command = [prlimit, f"--data={self.memory_mb << 20}", "--", *command]
        else:
            raise CheckProcessFailed("the check process cannot get a memory limit here (no cgroup, no prlimit)")
        self._proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=check_env(self.cpu_threads),
            text=True,
            cwd=self.job_context["lab_dir"],
        )
        self._exchange(self.job_context, START_TIMEOUT)

    def _exchange(self, message: dict, timeout: float) -> dict:
        proc, answer = self._proc, []
        try:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
        except OSError:
            raise self._ended(exited=True) from None
        reader = threading.Thread(target=lambda: answer.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = answer[0] if answer else None
        if not line:
            raise self._ended(exited=line == "", timeout=timeout)
        return json.loads(line)

    def _ended(self, exited: bool, timeout: float = 0) -> CheckProcessFailed:
        """Close the child that exited or did not answer; the error says why (its memory limit first)."""
        proc, group = self._proc, self._group
        if exited:
            try:
                proc.wait(timeout=5)  # its stdout closed: it is on its way out
            except subprocess.TimeoutExpired:
                pass
        else:
            proc.kill()
            proc.wait()
        out_of_memory = proc.returncode == OUT_OF_MEMORY or (group is not None and group.hit()[0])
        self.close()
        if out_of_memory:
            return CheckProcessFailed(
                f"the check process ran out of memory (its limit: {self.memory_mb} MB, Grading.check_memory_mb)"
            )
        if exited:
            return CheckProcessFailed(f"the check process exited (status {proc.returncode})")
        return CheckProcessFailed(f"no answer in {timeout:.0f} s")

    def close(self) -> None:
        proc, self._proc = self._proc, None
        group, self._group = self._group, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if group is not None:
            group.kill()
            group.remove()


_WARM: dict[str, CheckProcess] = {}  # job digest -> this process's warm child (one job at a time)
_WARM_LOCK = threading.Lock()


def warm_process(job_digest: str, job_context: dict, cpu_threads: int) -> CheckProcess:
    """This process's check process for a job (one at a time: an older job's is closed, and so is one whose
    job folder was made again)."""
    with _WARM_LOCK:
        if job_digest not in _WARM or _WARM[job_digest].job_context != job_context:
            for old in _WARM.values():
                old.close()
            _WARM.clear()
            _WARM[job_digest] = CheckProcess(job_context, cpu_threads)
        return _WARM[job_digest]


def close_warm() -> None:
    """End this process's warm check process (a batch whose check workers ran here is done)."""
    with _WARM_LOCK:
        for old in _WARM.values():
            old.close()
        _WARM.clear()


def check_in_child(
    context: dict, scratch: Path, job_digest: str, job_context: dict, cpu_threads: int, timeout: float
) -> list[dict]:
    """Run the hidden checks of one submission: the check records (``conftest.py``) as dicts.

    ``context`` says where the evidence is and holds the settings the checks
    read. The warm check process of this job adds the grader's figures and
    runs them; if it dies or hangs, the checks run in a fresh pytest without
    those figures: the checks that need none still count, and the AUC checks
    report a grader error.
    """
    context_file = scratch / "check_context.json"
    results_file = scratch / "check_results.json"
    context_file.write_text(json.dumps(context), encoding="utf-8")
    try:
        warm_process(job_digest, job_context, cpu_threads).run(context_file, results_file, scratch, timeout=timeout)
    except CheckProcessFailed as exc:
        context = {**context, "regraded": {"error": type(exc).__name__, "message": str(exc)}}
        context_file.write_text(json.dumps(context), encoding="utf-8")
        results_file.unlink(missing_ok=True)
        env = {**check_env(cpu_threads), "KIT_CHECK_CONTEXT": str(context_file), "KIT_CHECK_RESULTS": str(results_file)}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *PYTEST_ARGS],
            cwd=scratch,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if not results_file.is_file():
            raise RuntimeError(f"the hidden checks did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}") from exc
    if not results_file.is_file():
        raise RuntimeError("the hidden checks did not run (no results from the check process)")
    return json.loads(results_file.read_text(encoding="utf-8"))


# --- the child ----------------------------------------------------------------


def regrade(evidence_dir: Path, job_context: dict, given: dict) -> dict:
    """The grader's own figures: AUCs of the saved weights (or why there are none)."""
    from autograder.grading.evidence import load_evidence, weights_file
    from autograder.grading.reevaluate import reevaluate_weights

    try:
        weights = weights_file(evidence_dir, load_evidence(evidence_dir))
        return reevaluate_weights(job_context, weights, given)
    except MemoryError:
        raise  # the process ends (OUT_OF_MEMORY): a fresh one takes the next submission
    except Exception as exc:  # noqa: BLE001 - raised again by the checks that need the figures
        return {"error": type(exc).__name__, "message": str(exc)}


def _forget_checks() -> None:
    """Drop the check modules pytest imported last time, so each session starts from fresh modules."""
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None) or ""
        if path and Path(path).parent == CHECKS_DIR and Path(path).name != "__init__.py":
            del sys.modules[name]


def _serve() -> None:
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints must not break the protocol
    import pytest

    from autograder.grading.reevaluate import given_namespace, training_steps

    job_context = json.loads(sys.stdin.readline())
    given = given_namespace(job_context)
    figures = {"training_steps": training_steps(given)}
    # TensorFlow and the given code leave ~370,000 objects that live as long as this process. Out of the
    # collector's sight, a full collection (pytest makes two per session) takes no time instead of 0.2 s.
    gc.collect()
    gc.freeze()
    replies.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context_file = Path(request["context"])
        context = json.loads(context_file.read_text(encoding="utf-8"))
        context.update(figures, regraded=regrade(Path(context["evidence_dir"]), job_context, given))
        context_file.write_text(json.dumps(context), encoding="utf-8")
        os.environ["KIT_CHECK_CONTEXT"] = str(context_file)
        os.environ["KIT_CHECK_RESULTS"] = request["results"]
        os.chdir(request["cwd"])
        _forget_checks()
        code = pytest.main(PYTEST_ARGS)
        replies.write(json.dumps({"exit": int(code)}) + "\n")


def _at_memory_limit() -> bool:
    """Whether this process's data is within 10 % of its RLIMIT_DATA: a failed allocation there shows up in
    many guises (MemoryError, or a SystemError or ImportError of a module that ran out), not only one."""
    import re
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_DATA)
    used = re.search(r"VmData:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return soft != resource.RLIM_INFINITY and used is not None and int(used.group(1)) << 10 > 0.9 * soft


if __name__ == "__main__":
    try:
        _serve()
    except BaseException as exc:
        if isinstance(exc, MemoryError) or _at_memory_limit():
            os._exit(OUT_OF_MEMORY)
        raise
