"""The kit's settings, read from course_config.py like nbgrader's own."""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Enum, Float, Int, Unicode
from traitlets.config import Config, Configurable, PyFileConfigLoader

REPO_ROOT = Path(__file__).resolve().parent.parent


class Lab(Configurable):
    assignment = Unicode("spam_transformer", help="nbgrader assignment id of the lab").tag(config=True)
    dataset = Enum(["sms", "enron"], "sms", help="which labelled messages the lab trains on").tag(config=True)
    data_dir = Unicode("", help="local folder holding the dataset (else cache, else download)").tag(config=True)
    split_seed = Int(1234, help="seed of the train / validation / hidden test split").tag(config=True)
    seed = Int(42, help="training seed the grader gives every notebook").tag(config=True)

    @property
    def notebook(self) -> str:
        return self.assignment


class Grading(Configurable):
    val_auc_threshold = Float(0.93, help="lowest passing last val_auc").tag(config=True)
    hidden_auc_threshold = Float(0.93, help="lowest passing AUC on the hidden test split").tag(config=True)
    honesty_tolerance = Float(0.02, help="allowed gap between reported and re-evaluated val AUC").tag(config=True)
    partial_credit_on_crash = Bool(True, help="a run that ended early (a limit, a dead kernel) without final "
                                   "evidence is graded on what the guard recorded after each cell before the stop; "
                                   "False: every check fails").tag(config=True)
    min_learning_rate = Float(1e-5).tag(config=True)
    max_learning_rate = Float(1e-2).tag(config=True)
    check_memory_mb = Int(3072, help="memory of the check process that loads a student's weights (a cgroup of "
                          "its own where the host allows, else RLIMIT_DATA); past it, the AUC checks report a "
                          "grader error").tag(config=True)


class Sandbox(Configurable):
    mode = Enum(["bwrap", "none"], "bwrap", help="'none' runs student code unisolated (results marked)").tag(config=True)
    notebook_timeout = Int(900, help="seconds for the whole notebook").tag(config=True)
    cell_timeout = Int(600, help="seconds per cell").tag(config=True)
    memory_mb = Int(4096, help="resident memory of the student's process tree").tag(config=True)
    max_processes = Int(256, help="processes/threads the student's user namespace may hold").tag(config=True)
    max_output_bytes = Int(2_000_000, help="bytes of notebook output kept before it is cut").tag(config=True)
    disk_mb = Int(1024, help="MB the notebook may write into its home (a filesystem of that size; without a "
                  "sandbox: its scratch folder, and per file)").tag(config=True)
    max_open_files = Int(1024, help="files one process of the notebook may hold open (RLIMIT_NOFILE)").tag(config=True)
    cpu_threads = Int(0, help="CPU threads TensorFlow and BLAS may use in one sandbox; 0 = the machine's cores "
                      "shared among the sandboxes that run at once (Batch.n_workers)").tag(config=True)
    cgroups = Enum(["auto", "off"], "auto", help="'auto': memory, process and CPU limits enforced by the kernel "
                   "through a cgroup per run (v2 or v1); without cgroup rights nothing is graded. 'off': the watchdog "
                   "polls instead, and every result is marked 'limits not enforced'").tag(config=True)

    @property
    def threads(self) -> int:
        """The CPU threads of one run (the GradingJob fixes ``cpu_threads``; unset, one sandbox per core)."""
        return threads_per_sandbox(self.cpu_threads, len(os.sched_getaffinity(0)))


MAX_AUTO_THREADS = 8   # the lab's small model gains nothing past this; each thread is also a task under max_processes


def threads_per_sandbox(cpu_threads: int, sandboxes_at_once: int, cores: int | None = None) -> int:
    """CPU threads one sandbox gets: ``cpu_threads`` if set, else the cores shared among the sandboxes at once
    (at most ``MAX_AUTO_THREADS``). A reference run holds about 40 tasks (processes and threads) at 2 threads."""
    if cpu_threads > 0:
        return cpu_threads
    cores = cores or len(os.sched_getaffinity(0))
    return max(1, min(MAX_AUTO_THREADS, cores // max(1, sandboxes_at_once)))


class Batch(Configurable):
    scheduler_address = Unicode("", help="Dask scheduler to use; empty = a local cluster").tag(config=True)
    n_workers = Int(0, help="local workers; 0 = one per core").tag(config=True)
    threads_per_worker = Int(1).tag(config=True)
    check_workers = Int(0, help="local workers that run the hidden checks; 0 = one per four sandbox workers").tag(config=True)


def local_workers(batch: Batch, requested: int = 0) -> int:
    """Dask workers of a local cluster: ``requested``, else Batch.n_workers, else one per core."""
    return requested or batch.n_workers or len(os.sched_getaffinity(0))


def load_course_config(course_root: str | os.PathLike | None = None) -> Config:
    """The traitlets Config of course_config.py in course_root (default: the repo)."""
    root = Path(course_root or REPO_ROOT)
    return PyFileConfigLoader("course_config.py", path=str(root)).load_config()
