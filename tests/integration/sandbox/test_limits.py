"""The limits of a run on both paths, for real: the kernel's (this host's cgroups) and the watchdog's polling.

A small Python program stands for the notebook (no bubblewrap, no kernel:
seconds per case); the adversarial corpus (test_adversarial.py) runs the same
limits through the whole sandbox. Each case must end with the same status
on both paths.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from autograder.model import Status
from autograder.sandbox import cgroups
from autograder.sandbox.cgroups import Limits
from autograder.sandbox.limits import Disk, watch
from autograder.settings import Sandbox

HOST = cgroups.probe()
PATHS = [
    pytest.param("cgroup", marks=pytest.mark.skipif(HOST is None, reason="no cgroup rights on this host")),
    "watchdog",
]

MEMORY_HOG = "import time\nhog = []\nwhile True:\n    hog.append(b'x' * 20_000_000)\n    time.sleep(0.01)\n"
# Forks one child every 5 ms (each sleeps): linear, so the watchdog's path never floods the host.
FORKER = (
    "import os, time\nwhile True:\n    try:\n        if os.fork() == 0:\n            time.sleep(30)\n"
    "            os._exit(0)\n    except OSError:\n        pass\n    time.sleep(0.005)\n"
)
NORMAL = "import time\ndata = b'x' * 100_000_000\ntime.sleep(1.5)  # the watchdog looks twice a second at most\n"


def run(path: str, code: str, settings: Sandbox, tmp_path):
    group = HOST.create(0, Limits(settings.memory_mb, settings.max_processes, "0", 1)) if path == "cgroup" else None
    command = [sys.executable, "-c", code]
    try:
        started = time.monotonic()
        popen = subprocess.Popen(
            group.wrap(command) if group else command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        watched = watch(popen, Disk(popen.pid, {}, tmp_path, settings), settings, group)
        return watched, time.monotonic() - started, group
    finally:
        if group is not None:
            group.remove()


@pytest.mark.parametrize("path", PATHS)
def test_memory_past_the_limit_ends_the_run(path, tmp_path):
    watched, seconds, _ = run(path, MEMORY_HOG, Sandbox(memory_mb=300, notebook_timeout=60), tmp_path)
    assert (watched.status, watched.message) == (Status.OUT_OF_MEMORY, "used more than 300 MB of memory")
    assert seconds < 30


@pytest.mark.parametrize("path", PATHS)
def test_too_many_processes_end_the_run(path, tmp_path):
    watched, seconds, _ = run(path, FORKER, Sandbox(max_processes=40, notebook_timeout=60), tmp_path)
    assert watched.status == Status.TOO_MANY_PROCESSES and "(limit 40)" in watched.message
    assert seconds < 30


@pytest.mark.parametrize("path", PATHS)
def test_wall_time_ends_the_run(path, tmp_path):
    watched, seconds, _ = run(path, "import time\ntime.sleep(60)\n", Sandbox(notebook_timeout=2), tmp_path)
    assert watched.status == Status.TIMEOUT and 2 <= seconds < 10


@pytest.mark.parametrize("path", PATHS)
def test_a_run_within_its_limits_is_measured(path, tmp_path):
    watched, seconds, group = run(path, NORMAL, Sandbox(memory_mb=1000, notebook_timeout=60), tmp_path)
    assert watched.status is None and watched.message == ""
    assert 95 <= watched.peak_mb < 1000  # its 100 MB, by the cgroup's count or by the watchdog's look
    if path == "cgroup":
        assert watched.cpu_seconds and watched.cpu_seconds > 0.01
        for folder in set(group.dirs.values()):
            assert not folder.exists()  # removed after the run
