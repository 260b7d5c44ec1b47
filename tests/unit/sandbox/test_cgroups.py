"""The cgroup v2 path against a fake cgroup filesystem; the host layout as /proc shows it.

A real v2 hierarchy with memory and pids delegated is not on every machine
(this one mounts v1 controllers and an empty cgroup2), so the v2 driver is
checked on a folder tree that looks like one: what it writes, what it reads
back, how a run enters it and how the watchdog acts on its events. The v1
driver and the fallback run for real in tests/integration/sandbox/test_limits.py.
"""

from __future__ import annotations

import os
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
    assert layout.v1_mounts == {
        "memory": Path("/sys/fs/cgroup/memory"),
        "cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
        "cpuacct": Path("/sys/fs/cgroup/cpu,cpuacct"),
        "pids": Path("/sys/fs/cgroup/pids"),
    }
    assert layout.v1_paths == {"pids": "/user.slice", "cpu": "/", "cpuacct": "/", "memory": "/user.slice/grader"}
    assert Layout.read(tmp_path / "absent", tmp_path / "cgroup") == Layout()  # no /proc: no cgroups


def test_v2_is_chosen_where_memory_and_pids_are_delegated(tmp_path):
    host = cgroups.probe(fake_v2(tmp_path))
    assert host is not None and host.version == "v2"
    assert cgroups.probe(fake_v2(tmp_path / "not", delegated="cpu io")) is None  # cannot enable them here
    assert cgroups.probe(Layout()) is None  # nothing mounted


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
    assert (usage.cpu_seconds, usage.peak_mb, usage.oom_kills, usage.refused_forks, usage.peak_tasks) == (
        2.5,
        800.0,
        1,
        4,
        96,
    )


def test_a_run_enters_its_cgroup_before_it_runs(tmp_path):
    group = cgroups.probe(fake_v2(tmp_path)).create(0, Limits(256, 16, "0", 1))
    out = subprocess.run(
        group.wrap([sys.executable, "-c", "import os; print(os.getpid())"]), capture_output=True, text=True, check=True
    ).stdout
    procs = group.dirs["pids"] / "cgroup.procs"
    assert procs.read_text().split() == [out.strip()]  # the shell wrote its pid, then became the program
    assert group.procs_files() == [procs]


def test_the_watchdog_acts_on_a_v2_oom_event_and_kills_the_run(tmp_path):
    group = cgroups.probe(fake_v2(tmp_path)).create(0, Limits(256, 16, "0", 1))
    folder = group.dirs["memory"]
    popen = subprocess.Popen(group.wrap([sys.executable, "-c", "import time; time.sleep(60)"]), start_new_session=True)
    time.sleep(0.5)
    (folder / "memory.events").write_text("oom 1\noom_kill 1\n")  # what the kernel writes when it acts
    started = time.monotonic()
    watched = watch(popen, tmp_path / "scratch", Sandbox(memory_mb=256, notebook_timeout=60), group)
    assert watched.status == Status.OUT_OF_MEMORY and watched.message == "used more than 256 MB of memory"
    assert time.monotonic() - started < 30 and popen.returncode is not None  # killed, not waited out (60 s)
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
    assert time.monotonic() - started < 30  # the pidfd wakes the watchdog at the exit, not the 60 s timeout


# --- the hub's grader in a delegated v2 leaf (autograder/hub/cgroup_delegation.py) ----------------------


def fake_v2_leaf(tmp_path: Path, parent_gives: str = "cpuset cpu memory pids", procs: str | None = None) -> Layout:
    """Our own cgroup is ``spamkit_hub/grader/server`` and holds a process (ours by default)."""
    mount = tmp_path / "unified"
    grader = mount / "spamkit_hub" / "grader"
    leaf = grader / "server"
    leaf.mkdir(parents=True)
    for folder in (grader, leaf):
        (folder / "cgroup.controllers").write_text("cpuset cpu memory pids\n")
        (folder / "cgroup.procs").write_text("")
    (grader / "cgroup.subtree_control").write_text(parent_gives + "\n")
    (leaf / "cgroup.subtree_control").write_text("\n")
    (leaf / "cgroup.procs").write_text(f"{os.getpid()}\n" if procs is None else procs)
    return Layout(v2_mount=mount, v2_path="/spamkit_hub/grader/server")


def test_from_a_delegated_leaf_with_a_process_runs_are_made_next_to_it(tmp_path):
    layout = fake_v2_leaf(tmp_path)
    grader = layout.v2_mount / "spamkit_hub" / "grader"
    host = cgroups.probe(layout)
    assert host is not None and host.version == "v2" and host.parents == {"memory": grader}
    group = host.create(1, Limits(memory_mb=512, max_processes=32, cpus="0", threads=1))
    folder = group.dirs["memory"]
    assert folder.parent == grader and folder.name.startswith("spamkit-")
    assert (folder / "memory.max").read_text() == str(512 << 20) and (folder / "pids.max").read_text() == "32"
    assert (folder / "cpu.max").read_text() == "100000 100000" and (folder / "cpuset.cpus").read_text() == "0"
    assert [p.name for p in (grader / "server").iterdir() if p.is_dir()] == []  # nothing made in the leaf
    assert (grader / "server" / "cgroup.subtree_control").read_text() == "\n"  # nor tried there


def test_a_leaf_whose_parent_does_not_give_memory_and_pids_gets_no_cgroups(tmp_path):
    assert cgroups.probe(fake_v2_leaf(tmp_path, parent_gives="cpu io")) is None
    assert cgroups.probe(fake_v2_leaf(tmp_path / "none", parent_gives="")) is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any folder")
def test_a_leaf_whose_parent_is_not_ours_gets_no_cgroups(tmp_path):
    layout = fake_v2_leaf(tmp_path)
    grader = layout.v2_mount / "spamkit_hub" / "grader"
    (grader / "cgroup.procs").chmod(0o444)
    try:
        assert cgroups.probe(layout) is None
    finally:
        (grader / "cgroup.procs").chmod(0o644)


def test_a_delegated_cgroup_without_processes_still_makes_its_own_children(tmp_path):
    layout = fake_v2_leaf(tmp_path, procs="")
    leaf = layout.v2_mount / "spamkit_hub" / "grader" / "server"
    (leaf / "cgroup.subtree_control").write_text("memory pids\n")
    assert cgroups.probe(layout).parents == {"memory": leaf}  # as before: its own children


def fake_v2_root(
    tmp_path: Path, controllers: str = "cpuset cpu io memory hugetlb pids", enabled: str = "memory pids"
) -> Path:
    mount = tmp_path / "unified"
    (mount / "system.slice" / "hub.service").mkdir(parents=True)  # where the hub runs (it holds the hub)
    (mount / "cgroup.controllers").write_text(controllers + "\n")
    (mount / "cgroup.subtree_control").write_text(enabled + "\n")
    return mount


def record_kernel(monkeypatch, mount: Path) -> list[tuple]:
    """cgroup_delegation's writes and chowns, recorded; subtree_control writes act like the kernel's."""
    from autograder.hub import cgroup_delegation

    calls: list[tuple] = []

    def write(path, value):
        calls.append(("write", path.relative_to(mount).as_posix(), value))
        if path.name == "cgroup.subtree_control":
            now = set(path.read_text().split()) if path.exists() else set()
            now |= {token[1:] for token in value.split() if token.startswith("+")}
            now -= {token[1:] for token in value.split() if token.startswith("-")}
            path.write_text(" ".join(sorted(now)) + "\n")
        else:
            path.write_text(str(value))

    monkeypatch.setattr(cgroup_delegation, "_write", write)
    monkeypatch.setattr(
        cgroup_delegation.os,
        "chown",
        lambda path, uid, gid: calls.append(("chown", Path(path).relative_to(mount).as_posix(), uid)),
    )
    return calls


def test_the_hub_delegates_a_v2_subtree_as_the_kernel_documents(tmp_path, monkeypatch):
    import pwd

    from autograder.hub import cgroup_delegation

    mount = fake_v2_root(tmp_path)
    calls = record_kernel(monkeypatch, mount)
    user = pwd.getpwuid(os.getuid()).pw_name
    hub_layout = Layout(v2_mount=mount, v2_path="/system.slice/hub.service")
    procs = cgroup_delegation.delegate_v2("spamkit_hub", user, hub_layout)
    grader = f"spamkit_hub/{user}"
    assert procs == mount / grader / "server" / "cgroup.procs"
    assert not list((mount / "system.slice" / "hub.service").iterdir())  # not under the hub's own cgroup
    uid = os.getuid()
    assert calls == [
        ("write", "cgroup.subtree_control", "+cpu +cpuset"),  # the root had memory and pids already
        ("write", "spamkit_hub/cgroup.subtree_control", "+memory +pids +cpu +cpuset"),
        ("write", f"{grader}/cgroup.subtree_control", "+memory +pids +cpu +cpuset"),
        ("chown", grader, uid),
        ("chown", f"{grader}/cgroup.procs", uid),
        ("chown", f"{grader}/cgroup.threads", uid),
        ("chown", f"{grader}/cgroup.subtree_control", uid),
        ("chown", f"{grader}/server", uid),
        ("chown", f"{grader}/server/cgroup.procs", uid),
        ("chown", f"{grader}/server/cgroup.threads", uid),
        ("chown", f"{grader}/server/cgroup.subtree_control", uid),
    ]
    assert (mount / grader / "server").is_dir()

    # the server in the leaf (the kernel makes cgroup.procs in each folder): the kit's runs go next to it
    (mount / grader / "cgroup.procs").write_text("")
    (mount / grader / "server" / "cgroup.procs").write_text(f"{os.getpid()}\n")
    host = cgroups.probe(Layout(v2_mount=mount, v2_path=f"/{grader}/server"))
    assert host.parents == {"memory": mount / grader}
    run = host.create(0, Limits(256, 16, "0", 1)).dirs["memory"]
    assert (run / "cpu.max").exists() and (run / "cpuset.cpus").read_text() == "0"  # cpu and cpuset reached it

    # at the end: every folder, deepest first (rmdir: a cgroup's files go with it), the root's controllers kept
    removed = []
    monkeypatch.setattr(cgroup_delegation, "_rmdir", removed.append)
    cgroup_delegation.undelegate("spamkit_hub", user, Layout(v2_mount=mount))
    inside = {p for p in (mount / grader).iterdir() if p.is_dir()}  # the leaf, the run (and the probe's trial:
    assert {run, mount / grader / "server"} <= inside  # a fake folder keeps its files, so stays)
    assert set(removed[:-2]) == inside and removed[-2:] == [mount / grader, mount / "spamkit_hub"]
    assert (mount / "cgroup.subtree_control").read_text().split() == ["cpu", "cpuset", "memory", "pids"]


def test_the_hub_falls_back_to_memory_and_pids_where_cpu_cannot_be_enabled(tmp_path, monkeypatch):
    from autograder.hub import cgroup_delegation

    mount = fake_v2_root(tmp_path)
    calls = record_kernel(monkeypatch, mount)
    real = cgroup_delegation._write

    def refuse_cpu(path, value):  # a realtime process outside the root, say: EINVAL for +cpu
        if "+cpu" in value.split():
            raise OSError(22, "Invalid argument")
        real(path, value)

    monkeypatch.setattr(cgroup_delegation, "_write", refuse_cpu)
    user = __import__("pwd").getpwuid(os.getuid()).pw_name
    assert cgroup_delegation.delegate_v2("spamkit_hub", user, Layout(v2_mount=mount)) is not None
    writes = [c[1:] for c in calls if c[0] == "write"]
    assert writes == [
        ("spamkit_hub/cgroup.subtree_control", "+memory +pids"),
        (f"spamkit_hub/{user}/cgroup.subtree_control", "+memory +pids"),
    ]


def test_the_hub_makes_nothing_in_v2_on_a_hybrid_host(tmp_path, monkeypatch):
    from autograder.hub import cgroup_delegation

    mount = fake_v2_root(tmp_path, controllers="hugetlb", enabled="")  # controllers on v1, like this machine
    calls = record_kernel(monkeypatch, mount)
    assert cgroup_delegation.delegate_v2("spamkit_hub", "root", Layout(v2_mount=mount)) is None
    assert calls == [] and not (mount / "spamkit_hub").exists()
    assert cgroup_delegation.delegate_v2("spamkit_hub", "root", Layout()) is None  # no cgroup2 mount


def test_the_spawned_server_is_moved_in_before_it_becomes_the_user(tmp_path):
    from autograder.hub.cgroup_delegation import enter_then

    procs, marker = tmp_path / "cgroup.procs", tmp_path / "became"
    procs.write_text("")
    popen = subprocess.Popen(["true"], preexec_fn=enter_then(str(procs), lambda: marker.write_text(procs.read_text())))
    popen.wait()
    assert procs.read_text() == str(popen.pid) == marker.read_text()  # the child's own pid, written first
    with pytest.raises(subprocess.SubprocessError):  # a leaf that cannot be entered: no server
        subprocess.Popen(["true"], preexec_fn=enter_then(str(tmp_path / "absent" / "cgroup.procs"), lambda: None))


def test_the_wrapper_starts_the_server_only_inside_the_v2_leaf():
    wrapper = Path(__file__).resolve().parents[3] / "autograder" / "hub" / "singleuser_in_cgroup.sh"
    own = next(line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
    env = {"PATH": os.environ["PATH"]}
    inside = subprocess.run(
        ["sh", str(wrapper), "echo", "started"],
        env={**env, "SPAMKIT_CGROUP_V2_LEAF": own},
        capture_output=True,
        text=True,
    )
    assert (inside.returncode, inside.stdout) == (0, "started\n")
    outside = subprocess.run(
        ["sh", str(wrapper), "echo", "started"],
        capture_output=True,
        text=True,
        env={**env, "SPAMKIT_CGROUP_V2_LEAF": "/spamkit_hub/grader/server"},
    )
    assert outside.returncode == 1 and outside.stdout == "" and "not in the cgroup v2 leaf" in outside.stderr
