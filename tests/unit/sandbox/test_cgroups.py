"""The cgroup v2 path against a fake cgroup filesystem; the host layout as /proc shows it.

A real v2 hierarchy with memory and pids delegated is not on every machine
(this one mounts v1 controllers and an empty cgroup2), so the v2 driver is
checked on a folder tree that looks like one: what it writes, what it reads
back, how a run enters it and how the watchdog acts on its events. The v1
driver and the fallback run for real in tests/integration/sandbox/test_limits.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.model import Status
from autograder.sandbox import cgroups
from autograder.sandbox.cgroups import Layout, Limits
from autograder.sandbox.limits import watch
from autograder.settings import Sandbox

MOUNTINFO = """\
24 30 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - tmpfs tmpfs rw,mode=755
25 24 0:23 / {v2} rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
26 24 0:24 / {v1}/memory rw,nosuid shared:11 - cgroup cgroup rw,memory
27 24 0:25 / {v1}/cpu,cpuacct rw,nosuid shared:12 - cgroup cgroup rw,cpu,cpuacct
28 24 0:26 / {v1}/pids rw,nosuid shared:13 - cgroup cgroup rw,pids
"""
PROC_CGROUP = "4:pids:/user.slice\n3:cpu,cpuacct:/\n2:memory:/user.slice/grader\n0::/grader.slice/grader\n"


def fake_v2(tmp_path: Path, delegated: str = "cpuset cpu io memory pids") -> Layout:
    mount = tmp_path / "unified"
    own = mount / "grader.slice" / "grader"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids\n")
    (own / "cgroup.subtree_control").write_text(delegated + "\n")
    return Layout(v2_mount=mount, v2_path="/grader.slice/grader")


def test_layout_is_read_from_mountinfo_and_proc_cgroup(tmp_path):
    (tmp_path / "mountinfo").write_text(MOUNTINFO.format(v2="/sys/fs/cgroup/unified", v1="/sys/fs/cgroup"))
    (tmp_path / "cgroup").write_text(PROC_CGROUP)
    layout = Layout.read(tmp_path / "mountinfo", tmp_path / "cgroup")
    assert layout.v2_mount == Path("/sys/fs/cgroup/unified") and layout.v2_path == "/grader.slice/grader"
    assert layout.v1_mounts == {"memory": Path("/sys/fs/cgroup/memory"), "cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
                                "cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct"), "pids": Path("/sys/fs/cgroup/pids")}
    assert layout.v1_paths == {"pids": "/user.slice", "cpu": "/", "cpuacct": "/", "memory": "/user.slice/grader"}
    assert Layout.read(tmp_path / "absent", tmp_path / "cgroup") == Layout()  # no /proc: no cgroups


def test_v2_is_chosen_where_memory_and_pids_are_delegated(tmp_path):
    host = cgroups.probe(fake_v2(tmp_path))
    assert host is not None and host.version == "v2"
    assert cgroups.probe(fake_v2(tmp_path / "not", delegated="cpu io")) is None  # cannot enable them here
    assert cgroups.probe(Layout()) is None                                       # nothing mounted


def test_v2_cgroup_gets_every_limit_and_reports_what_it_saw(tmp_path):
    layout = fake_v2(tmp_path)
    host = cgroups.probe(layout)
    group = host.create(3, Limits(memory_mb=1500, max_processes=96, cpus="1", threads=1))
    folder = group.dirs["memory"]
    assert folder.parent == layout.v2_mount / "grader.slice" / "grader" and folder.name.startswith("spamkit-")
    written = {f.name: f.read_text() for f in folder.iterdir()}
    assert written["memory.max"] == str(1500 << 20) and written["memory.swap.max"] == "0"
    assert written["memory.oom.group"] == "1" and written["pids.max"] == "96"
    assert written["cpu.max"] == "100000 100000" and written["cpuset.cpus"] == "1"
    assert group.hit() == (False, 0) and group.needs_polling() is None  # v2 announces both events

    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\n")
    (folder / "pids.events").write_text("max 4\n")
    (folder / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (folder / "memory.peak").write_text(str(800 << 20))
    (folder / "pids.peak").write_text("96\n")
    usage = group.usage()
    assert group.hit() == (True, 4)
    assert (usage.cpu_seconds, usage.peak_mb, usage.oom_kills, usage.refused_forks, usage.peak_tasks) == (2.5, 800.0, 1, 4, 96)


def test_a_run_enters_its_cgroup_before_it_runs(tmp_path):
    group = cgroups.probe(fake_v2(tmp_path)).create(0, Limits(256, 16, "0", 1))
    out = subprocess.run(group.wrap([sys.executable, "-c", "import os; print(os.getpid())"]),
                         capture_output=True, text=True, check=True).stdout
    procs = group.dirs["pids"] / "cgroup.procs"
    assert procs.read_text().split() == [out.strip()]  # the shell wrote its pid, then became the program
    assert group.procs_files() == [procs]


def test_the_watchdog_acts_on_a_v2_oom_event_and_kills_the_run(tmp_path):
    group = cgroups.probe(fake_v2(tmp_path)).create(0, Limits(256, 16, "0", 1))
    folder = group.dirs["memory"]
    popen = subprocess.Popen(group.wrap([sys.executable, "-c", "import time; time.sleep(60)"]), start_new_session=True)
    time.sleep(0.5)
    (folder / "memory.events").write_text("oom 1\noom_kill 1\n")   # what the kernel writes when it acts
    started = time.monotonic()
    watched = watch(popen, tmp_path / "scratch", Sandbox(memory_mb=256, notebook_timeout=60), group)
    assert watched.status == Status.OUT_OF_MEMORY and watched.message == "used more than 256 MB of memory"
    assert time.monotonic() - started < 30 and popen.returncode is not None   # killed, not waited out (60 s)
    assert (folder / "cgroup.kill").read_text() == "1"


def test_the_watchdog_reports_refused_forks_and_times_out(tmp_path):
    group = cgroups.probe(fake_v2(tmp_path)).create(0, Limits(256, 16, "0", 1))
    popen = subprocess.Popen(group.wrap([sys.executable, "-c", "import time; time.sleep(60)"]), start_new_session=True)
    (group.dirs["pids"] / "pids.events").write_text("max 7\n")
    (group.dirs["pids"] / "pids.peak").write_text("16\n")
    watched = watch(popen, tmp_path, Sandbox(max_processes=16, notebook_timeout=60), group)
    assert watched.status == Status.TOO_MANY_PROCESSES
    assert watched.message == "started 16 processes and threads (limit 16)"

    group = cgroups.probe(fake_v2(tmp_path / "again")).create(0, Limits(256, 16, "0", 1))
    popen = subprocess.Popen(group.wrap([sys.executable, "-c", "import time; time.sleep(60)"]), start_new_session=True)
    watched = watch(popen, tmp_path, Sandbox(notebook_timeout=1), group)
    assert watched.status == Status.TIMEOUT and popen.returncode is not None


@pytest.mark.parametrize("kind", ["v2", "none"])
def test_a_run_that_ends_by_itself_passes_no_limit(tmp_path, kind):
    group = cgroups.probe(fake_v2(tmp_path)).create(0, Limits(256, 16, "0", 1)) if kind == "v2" else None
    command = [sys.executable, "-c", "print('done')"]
    started = time.monotonic()
    popen = subprocess.Popen(group.wrap(command) if group else command, stdout=subprocess.DEVNULL)
    watched = watch(popen, tmp_path, Sandbox(notebook_timeout=60), group)
    assert watched.status is None and popen.returncode == 0
    assert time.monotonic() - started < 30   # the pidfd wakes the watchdog at the exit, not the 60 s timeout
