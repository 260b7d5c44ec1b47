"""The sandbox's pieces without a sandbox: the results channel, the bwrap view, the checkout guard."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from autograder.model import Status
from autograder.sandbox import bwrap, host
from autograder.sandbox.channel import Receiver
from autograder.sandbox.collect import RunProgress, read_report
from autograder.sandbox.payload import runner
from autograder.sandbox.spec import PAYLOAD_INTERNALS, RunSpec
from autograder.settings import Sandbox


def test_the_runner_reads_result_files_without_following_symlinks(tmp_path):
    base = tmp_path / "home"
    (base / "evidence").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    (base / "run.json").write_text('{"status": "ok"}')
    (base / "executed.ipynb").symlink_to(secret)
    (base / "evidence" / "evidence.json").symlink_to(secret)
    os.mkfifo(base / "evidence" / "model.weights.h5")
    assert runner.read_file(base, "run.json", 100) == b'{"status": "ok"}'
    assert runner.read_file(base, "run.json", 5) is None
    assert runner.read_file(base, "executed.ipynb", 100) is None
    assert runner.read_file(base, "evidence/evidence.json", 100) is None
    assert runner.read_file(base, "evidence/model.weights.h5", 100) is None  # a FIFO: not read, not waited on
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "evidence").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "evidence.json").write_text("{}")
    assert runner.read_file(linked, "evidence/evidence.json", 100) is None


def frames(*parts) -> bytes:
    out = b""
    for name, data in parts:
        out += json.dumps({"name": name, "size": len(data)}).encode() + b"\n" + data
    return out


def receive(data: bytes, accepted: dict) -> Receiver:
    read_end, write_end = os.pipe()
    receiver = Receiver(read_end, accepted)
    receiver.start()
    with os.fdopen(write_end, "wb") as pipe:
        pipe.write(data)
    receiver.join(5)
    assert not receiver.is_alive()
    return receiver


def test_the_channel_keeps_the_last_frame_of_each_accepted_name_within_its_size(tmp_path):
    got = receive(
        frames(
            ("run.json", b"old"),
            ("run.json", b'{"status": "ok"}'),
            ("evidence/e.json", b"x" * 11),
            ("../../etc/passwd", b"root"),
            ("executed.ipynb", b"{}"),
        ),
        {"run.json": 100, "evidence/e.json": 10, "executed.ipynb": 10, "evidence/w.h5": 10},
    )
    assert got.files == {"run.json": b'{"status": "ok"}', "executed.ipynb": b"{}"}
    problems = got.write_to(tmp_path)
    assert problems == {"evidence/e.json": "too big", "evidence/w.h5": "missing"}
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == [
        "executed.ipynb",
        "run.json",
    ]
    assert got.problems["channel"].startswith("unexpected file")


@pytest.mark.parametrize(
    "broken",
    [
        b"not json\n",
        b'{"name": "run.json", "size": -5}\n',
        b"x" * 5000,
        frames(("run.json", b"full")) + b'{"name": "run.json", "size": 99}\nshort',
    ],
)
def test_a_broken_or_cut_frame_ends_the_reading_and_keeps_nothing_half_sent(broken):
    got = receive(frames(("progress", b"1")) + broken, {"progress": 10, "run.json": 100})
    assert got.files.get("progress") == b"1"
    assert got.files.get("run.json") in (None, b"full")


def test_traversable_parents_are_made_first():
    args = bwrap.traversable_parents(["--ro-bind", "/a/b/venv", "/a/b/venv", "--tmpfs", "/tmp"])
    assert args == [
        "--perms",
        "0755",
        "--dir",
        "/a",
        "--perms",
        "0755",
        "--dir",
        "/a/b",
        "--ro-bind",
        "/a/b/venv",
        "/a/b/venv",
        "--tmpfs",
        "/tmp",
    ]


def spec(tmp_path) -> RunSpec:
    return RunSpec.make(Sandbox(disk_mb=300), "userns", 0, {}, None, {})


def test_kit_package_is_hidden_when_inside_a_bound_python_tree(tmp_path):
    launch = bwrap.Launch([])
    view = bwrap.view(spec(tmp_path), launch, python_roots=[str(bwrap.KIT_PACKAGE.parent)])
    assert ["--tmpfs", str(bwrap.KIT_PACKAGE)] == view[view.index(str(bwrap.KIT_PACKAGE)) - 1 :][:2]
    plain = bwrap.view(spec(tmp_path), launch, python_roots=["/nowhere"])
    assert str(bwrap.KIT_PACKAGE) not in plain
    launch.close()


def test_the_view_binds_no_host_path_of_the_kit_the_job_or_the_submission(tmp_path):
    """The payload, the splits and the submission are copied in from descriptors; the writable places are
    size-capped tmpfs mounts (the home at disk_mb)."""
    (tmp_path / "nb.ipynb").write_text("{}")
    data = tmp_path / "public.tsv"
    data.write_text("x")
    run = RunSpec.make(Sandbox(disk_mb=300), "userns", 0, {"nb.ipynb": tmp_path / "nb.ipynb"}, data, {})
    launch = bwrap.Launch([])
    view = bwrap.view(run, launch, python_roots=["/nowhere"])
    try:
        assert str(tmp_path) not in " ".join(view) and str(bwrap.KIT_PACKAGE) not in " ".join(view)
        # runner, capture, the fences they load, splits, notebook
        assert len(launch.fds) == 4 + len(PAYLOAD_INTERNALS)
        assert [
            view[i + 2] for i, arg in enumerate(view) if arg == "--ro-bind-data" and "/internals/" in view[i + 2]
        ] == [f"/opt/kit/internals/{library}.py" for library in PAYLOAD_INTERNALS]
        home = view.index("/home/student")
        assert view[home - 5 : home] == ["--perms", "0777", "--size", str(300 << 20), "--tmpfs"]
        assert "--bind" not in view  # nothing of the host is writable
        for path in ("/tmp", "/dev/shm"):
            at = view.index(path)
            assert view[at - 3 : at] == ["--size", str(256 << 20), "--tmpfs"]
    finally:
        launch.close()


def test_a_python_tree_holding_the_checkout_is_refused():
    checkout = str(bwrap.KIT_PACKAGE.parent)
    assert host.exposed_checkout([checkout]) == checkout
    assert host.exposed_checkout([str(Path(checkout).parent)]) == str(Path(checkout).parent)
    assert host.exposed_checkout([checkout + "/.venv", "/usr"]) is None


def test_the_runner_s_report_is_data(tmp_path):
    (tmp_path / "run.json").write_text(
        '{"status": "kernel_died", "message": "the Python kernel died", "capture_errors": ["guard: x"]}'
    )
    assert read_report(tmp_path) == (Status.KERNEL_DIED, "the Python kernel died", ["guard: x"], RunProgress())
    for planted in ('{"status": "ok; rm -rf"}', '{"status": "graded"}', '{"status": "no_submission"}'):
        (tmp_path / "run.json").write_text(planted)  # only run statuses can come from inside
        assert read_report(tmp_path)[0] == Status.ERROR
    for broken in ("[1, 2", "[" * 5000 + "]" * 5000):  # cut short, or nested past Python's recursion limit
        (tmp_path / "run.json").write_text(broken)
        assert read_report(tmp_path) == (Status.ERROR, "the runner's report was not valid", [], RunProgress())


def test_the_runner_uses_nbgrader_s_execute_without_nbgrader_s_server_parts():
    """The runner's Execute is nbgrader's class with nbgrader's settings, without nbgrader's web server imports;
    a process that imports the runner and then nbgrader gets the real package."""
    import subprocess
    import sys

    import autograder.sandbox.payload as payload

    probe = (
        "import sys, runner; E = runner.Execute; "
        "print(E.__module__, E.interrupt_on_timeout.default_value, E().allow_errors, "
        "any(m.startswith(('nbgrader', 'nbconvert', 'sqlalchemy')) for m in sys.modules)); "
        "from nbgrader.preprocessors import Execute, ClearSolutions; import nbgrader.apps, nbconvert; "
        "print(Execute.__name__, ClearSolutions.__name__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=Path(payload.__file__).parent, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["nbgrader.preprocessors.execute", "True", "True", "False", "Execute", "ClearSolutions"]


def test_a_slot_folder_someone_else_made_is_never_used(tmp_path):
    """The slot locks sit in the shared temp folder: a student of the same machine could make the folder first."""
    from autograder.errors import SandboxUnavailable
    from autograder.sandbox.limits import private_folder

    assert private_folder(tmp_path / "mine") == tmp_path / "mine"
    assert os.stat(tmp_path / "mine").st_mode & 0o777 == 0o700
    assert private_folder(tmp_path / "mine") == tmp_path / "mine"  # ours, as we made it: used again
    (tmp_path / "open").mkdir(mode=0o777)
    os.chmod(tmp_path / "open", 0o777)
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    refused = [tmp_path / "open", tmp_path / "link"]
    if os.geteuid() == 0:
        (tmp_path / "theirs").mkdir(mode=0o700)
        os.chown(tmp_path / "theirs", 65534, 65534)
        refused.append(tmp_path / "theirs")
    for path in refused:
        with pytest.raises(SandboxUnavailable, match="not a private folder"):
            private_folder(path)


def test_without_cgroup_rights_nothing_runs_unless_the_course_turned_them_off(monkeypatch):
    """The watchdog alone cannot see tmpfs, memfd or shared memory: no cgroup rights means no run."""
    from autograder.errors import SandboxUnavailable

    monkeypatch.setattr(host, "_CGROUPS", {})
    monkeypatch.setattr(host.cgroups, "probe", lambda: None)
    with pytest.raises(SandboxUnavailable, match="--Sandbox.cgroups=off"):
        host.limit_cgroups(Sandbox())
    assert host.limit_cgroups(Sandbox(cgroups="off")) is None
