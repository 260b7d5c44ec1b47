"""The kit's settings, read from course_config.py like nbgrader's own."""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import Enum, Float, Int, Unicode
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
    min_learning_rate = Float(1e-5).tag(config=True)
    max_learning_rate = Float(1e-2).tag(config=True)


class Sandbox(Configurable):
    mode = Enum(["bwrap", "none"], "bwrap", help="'none' runs student code unisolated (results marked)").tag(config=True)
    notebook_timeout = Int(900, help="seconds for the whole notebook").tag(config=True)
    cell_timeout = Int(600, help="seconds per cell").tag(config=True)
    memory_mb = Int(4096, help="resident memory of the student's process tree").tag(config=True)
    max_processes = Int(256, help="processes/threads the student's user namespace may hold").tag(config=True)
    max_output_bytes = Int(2_000_000, help="bytes of notebook output kept before it is cut").tag(config=True)
    disk_mb = Int(1024, help="MB the notebook may write into its scratch folder (and per file)").tag(config=True)
    cpu_threads = Int(1, help="CPU threads TensorFlow and BLAS may use").tag(config=True)


class Batch(Configurable):
    scheduler_address = Unicode("", help="Dask scheduler to use; empty = a local cluster").tag(config=True)
    n_workers = Int(0, help="local workers; 0 = one per core").tag(config=True)
    threads_per_worker = Int(1).tag(config=True)


def load_course_config(course_root: str | os.PathLike | None = None) -> Config:
    """The traitlets Config of course_config.py in course_root (default: the repo)."""
    root = Path(course_root or REPO_ROOT)
    return PyFileConfigLoader("course_config.py", path=str(root)).load_config()
