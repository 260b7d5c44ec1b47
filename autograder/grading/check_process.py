"""The warm process that runs the hidden checks.

Importing TensorFlow, running the lab's given code, adapting the tokenizer
and starting pytest take seconds, the same seconds for every submission of a
job. So each grading process (nbgrader's autograde, or a Dask worker) keeps
one long-lived child, ``python -m autograder.grading.check_process``, that does this
once and then, per submission, scores the saved weights on the validation and
hidden test splits (``reevaluate.py``) and runs the hidden checks
(``pytest autograder/grading/checks``) in-process on the evidence and those
figures. ``run_checks`` is the one way in: it uses this process's warm child
for the job and falls back to a fresh pytest.

The child runs outside the sandbox, like the checks always have; it only reads
the evidence (JSON, checked against a schema, and an HDF5 weights file). If it
crashes or hangs on one submission, it is killed, that submission's checks
run in a fresh pytest process without the grader's figures (its AUC checks
then report a grader error), and the next submission starts a new child.
Protocol: JSON lines on stdin, answers on a private copy of stdout (stray
prints of TensorFlow and pytest go to stderr); the child exits when stdin
closes, so it never outlives its parent.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from ..errors import CheckProcessFailed

KIT_ROOT = Path(__file__).resolve().parent.parent.parent
CHECKS_DIR = Path(__file__).with_name("checks")
PYTEST_ARGS = [str(CHECKS_DIR), "-q", "-p", "no:cacheprovider", "--rootdir", str(CHECKS_DIR), "-W", "ignore"]
START_TIMEOUT = 300


def check_env(cpu_threads: int) -> dict:
    """Environment of a check process: the kit importable, TensorFlow quiet and on the CPU threads it is given."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(KIT_ROOT), os.environ.get("PYTHONPATH", "")]),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        # the checks need no third-party pytest plugin: none is looked up (entry points) or loaded per session
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        # as many threads as the student's run gets: parallel workers must not oversubscribe the cores
        **{name: str(cpu_threads) for name in
           ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")},
    }


class CheckProcess:
    """One warm check process for one job (its given code and data splits)."""

    def __init__(self, job_context: dict, cpu_threads: int):
        self.job_context = job_context
        self.cpu_threads = cpu_threads
        self._proc: subprocess.Popen | None = None
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
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "autograder.grading.check_process"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=check_env(self.cpu_threads), text=True, cwd=self.job_context["lab_dir"])
        self._exchange(self.job_context, START_TIMEOUT)

    def _exchange(self, message: dict, timeout: float) -> dict:
        proc, answer = self._proc, []
        try:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
        except OSError:
            self.close()
            raise CheckProcessFailed("the check process exited") from None
        reader = threading.Thread(target=lambda: answer.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        line = answer[0] if answer else None
        if not line:
            self.close()
            raise CheckProcessFailed("the check process exited" if line == "" else f"no answer in {timeout:.0f} s")
        return json.loads(line)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


_WARM: dict[str, CheckProcess] = {}   # job digest -> this process's warm child (one job at a time)
_WARM_LOCK = threading.Lock()


def warm_process(job_digest: str, job_context: dict, cpu_threads: int) -> CheckProcess:
    """This process's check process for a job (one at a time: an older job's is closed)."""
    with _WARM_LOCK:
        if job_digest not in _WARM:
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


def run_checks(context: dict, scratch: Path, job_digest: str, job_context: dict, cpu_threads: int,
               timeout: float) -> list[dict]:
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
        proc = subprocess.run([sys.executable, "-m", "pytest", *PYTEST_ARGS], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=timeout)
        if not results_file.is_file():
            raise RuntimeError(f"the hidden checks did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
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


if __name__ == "__main__":
    _serve()
