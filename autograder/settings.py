"""The kit's settings, read from course_config.py like nbgrader's own.

The defaults here are the course's values: the thresholds are the calibrated ones (``spamkit calibrate``),
the limits the ones the reference solution was measured under. A course_config.py sets only what its course
changes (``tests/unit/test_settings.py`` checks that a course_config.py with only the course id and the data
folder gets the shipped course's grading job). ``spamkit --help-all`` lists every setting with its help.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Bool, Enum, Float, Int, Unicode
from traitlets.config import Config, Configurable, PyFileConfigLoader

REPO_ROOT = Path(__file__).resolve().parent.parent


class Lab(Configurable):
    assignment = Unicode("spam_transformer", help="nbgrader assignment id of the lab").tag(config=True)
    dataset = Enum(["sms", "enron"], "sms", help="which labelled messages the lab trains on").tag(config=True)
    data_dir = Unicode(
        "",
        help="local folder holding the dataset; empty: SPAM_LAB_DATA_DIR, else the cache "
        "(~/.cache/spam_lab), else the download (SMS only)",
    ).tag(config=True)
    split_seed = Int(1234, help="seed of the train / validation / hidden test split").tag(config=True)
    seed = Int(42, help="training seed the grader gives every notebook").tag(config=True)

    @property
    def notebook(self) -> str:
        """The lab notebook's file name without ``.ipynb``: nbgrader's assignment id, which it is named after."""
        return self.assignment


class Grading(Configurable):
    # From `spamkit calibrate` (20 seeded runs of the reference solution, 2026-11-27): the grader's val AUC
    # min 0.9327 / median 0.9803, hidden AUC min 0.9720 / median 0.9892, reported-vs-regraded gap 0 on every
    # run. Thresholds = min - 0.02 (rounded down to 0.005); tolerance = largest gap + 0.005.
    val_auc_threshold = Float(0.91, help="lowest passing last val_auc (calibrated: `spamkit calibrate`)").tag(
        config=True
    )
    hidden_auc_threshold = Float(
        0.95, help="lowest passing AUC on the hidden test split (calibrated: `spamkit calibrate`)"
    ).tag(config=True)
    honesty_tolerance = Float(
        0.005, help="allowed gap between the val AUC the notebook reports and the grader's own on its weights"
    ).tag(config=True)
    partial_credit_on_crash = Bool(
        True,
        help="a run that ended early (a limit, a dead kernel) without final "
        "evidence is graded on what the guard recorded after each cell before the stop; "
        "False: every check fails",
    ).tag(config=True)
    min_learning_rate = Float(1e-5, help="lowest learning rate the compile check accepts").tag(config=True)
    max_learning_rate = Float(1e-2, help="highest learning rate the compile check accepts").tag(config=True)
    check_memory_mb = Int(
        3072,
        help="memory of the check process that loads a student's weights (a cgroup of "
        "its own where the host allows, else RLIMIT_DATA); past it, the AUC checks report a "
        "grader error",
    ).tag(config=True)


class Sandbox(Configurable):
    mode = Enum(["bwrap", "none"], "bwrap", help="'none' runs student code unisolated (results marked)").tag(
        config=True
    )
    notebook_timeout = Int(900, help="seconds for the whole notebook").tag(config=True)
    cell_timeout = Int(600, help="seconds per cell").tag(config=True)
    memory_mb = Int(4096, help="resident memory of the student's process tree").tag(config=True)
    max_processes = Int(256, help="processes/threads the student's user namespace may hold").tag(config=True)
    max_output_bytes = Int(2_000_000, help="bytes of notebook output kept before it is cut").tag(config=True)
    disk_mb = Int(
        1024,
        help="MB the notebook may write into its home (a filesystem of that size; without a "
        "sandbox: its scratch folder, and per file)",
    ).tag(config=True)
    max_open_files = Int(1024, help="files one process of the notebook may hold open (RLIMIT_NOFILE)").tag(config=True)
    cpu_threads = Int(
        0,
        help="CPU threads TensorFlow and BLAS may use in one sandbox; 0 = the machine's cores "
        "shared among the sandboxes that run at once (Batch.n_workers)",
    ).tag(config=True)
    cgroups = Enum(
        ["auto", "off"],
        "auto",
        help="'auto': memory, process and CPU limits enforced by the kernel "
        "through a cgroup per run (v2 or v1); without cgroup rights nothing is graded. 'off': the watchdog "
        "polls instead, and every result is marked 'limits not enforced'",
    ).tag(config=True)

    @property
    def threads(self) -> int:
        """The CPU threads of one run (the GradingJob fixes ``cpu_threads``; unset, one sandbox per core)."""
        return threads_per_sandbox(self.cpu_threads, machine_cores())


MAX_AUTO_THREADS = 8  # the lab's small model gains nothing past this; each thread is also a task under max_processes


def threads_per_sandbox(cpu_threads: int, sandboxes_at_once: int, cores: int | None = None) -> int:
    """CPU threads one sandbox gets: ``cpu_threads`` if set, else the cores shared among the sandboxes at once
    (at most ``MAX_AUTO_THREADS``). A reference run holds about 40 tasks (processes and threads) at 2 threads."""
    if cpu_threads > 0:
        return cpu_threads
    cores = cores or machine_cores()
    return max(1, min(MAX_AUTO_THREADS, cores // max(1, sandboxes_at_once)))


class Batch(Configurable):
    scheduler_address = Unicode("", help="Dask scheduler to use; empty = a local cluster").tag(config=True)
    cluster = Unicode(
        "",
        help="import path (module.function; a module beside course_config.py is found first) "
        "of a callable returning a Dask cluster object to grade on, e.g. one making a dask-jobqueue "
        "SLURMCluster; empty = scheduler_address, else a local cluster",
    ).tag(config=True)
    n_workers = Int(0, help="local sandbox workers (notebooks graded at once); 0 = one per core (local_workers)").tag(
        config=True
    )
    threads_per_worker = Int(
        1, help="Dask threads of each local worker (each runs one sandbox or check at a time)"
    ).tag(config=True)
    check_workers = Int(0, help="local workers that run the hidden checks; 0 = one per four sandbox workers").tag(
        config=True
    )


def machine_cores() -> int:
    """The cores this process may run on (its CPU affinity; the CPU count where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def local_workers(batch: Batch, requested: int = 0) -> int:
    """The worker rule, written only here: the sandboxes a batch runs at once are ``requested``
    (``spamkit grade --workers``), else Batch.n_workers, else one per core (``machine_cores``)."""
    return requested or batch.n_workers or machine_cores()


def load_course_config(course_root: str | os.PathLike | None = None) -> Config:
    """The traitlets Config of course_config.py in course_root (default: the repo)."""
    root = Path(course_root or REPO_ROOT)
    return PyFileConfigLoader("course_config.py", path=str(root)).load_config()
