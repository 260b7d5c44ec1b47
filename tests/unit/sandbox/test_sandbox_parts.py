"""The sandbox's pieces without a sandbox: bringing results back, the bwrap view, the checkout guard."""

from __future__ import annotations

import os
from pathlib import Path

from autograder.sandbox import bwrap, host
from autograder.sandbox.collect import RunProgress, bring_back, read_report, read_untrusted
from autograder.model import Status


def test_result_files_are_read_without_following_symlinks(tmp_path):
    base = tmp_path / "untrusted"
    (base / "evidence").mkdir(parents=True)
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    (base / "run.json").write_text('{"status": "ok"}')
    (base / "executed.ipynb").symlink_to(secret)
    (base / "evidence" / "evidence.json").symlink_to(secret)
    os.mkfifo(base / "evidence" / "model.weights.h5")
    assert read_untrusted(base, "run.json", 100) == (b'{"status": "ok"}', "")
    assert read_untrusted(base, "run.json", 5) == (None, "too big")
    assert read_untrusted(base, "executed.ipynb", 100) == (None, "missing")
    assert read_untrusted(base, "evidence/evidence.json", 100) == (None, "missing")
    assert read_untrusted(base, "evidence/model.weights.h5", 100) == (None, "not a regular file")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "evidence").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "evidence.json").write_text("{}")
    assert read_untrusted(linked, "evidence/evidence.json", 100) == (None, "missing")


def test_collect_keeps_only_result_files(tmp_path):
    scratch = tmp_path / "work"
    (scratch / "evidence").mkdir(parents=True)
    for name in ("run.json", "executed.ipynb", "evidence/evidence.json", "pytest.py", "conftest.py"):
        (scratch / name).write_text("x")
    (scratch / "evidence" / "model.weights.h5").symlink_to("/etc/passwd")
    untrusted, problems = bring_back(scratch, {"run.json": 10, "executed.ipynb": 10, "evidence/evidence.json": 10,
                                                "evidence/model.weights.h5": 10})
    kept = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*") if p.is_file())
    assert kept == ["evidence/evidence.json", "executed.ipynb", "run.json"]
    assert problems == {"evidence/model.weights.h5": "missing"}
    assert all(not p.is_symlink() for p in scratch.rglob("*"))
    assert (untrusted / "pytest.py").exists()


def test_traversable_parents_are_made_first():
    args = bwrap.traversable_parents(["--ro-bind", "/a/b/venv", "/a/b/venv", "--tmpfs", "/tmp"])
    assert args == ["--perms", "0755", "--dir", "/a", "--perms", "0755", "--dir", "/a/b",
                    "--ro-bind", "/a/b/venv", "/a/b/venv", "--tmpfs", "/tmp"]


def test_kit_package_is_hidden_when_inside_a_bound_python_tree(tmp_path):
    view = bwrap.view(tmp_path, None, python_roots=[str(bwrap.KIT_PACKAGE.parent)])
    assert ["--tmpfs", str(bwrap.KIT_PACKAGE)] == view[view.index(str(bwrap.KIT_PACKAGE)) - 1:][:2]
    plain = bwrap.view(tmp_path, None, python_roots=["/nowhere"])
    assert str(bwrap.KIT_PACKAGE) not in plain


def test_a_python_tree_holding_the_checkout_is_refused():
    checkout = str(bwrap.KIT_PACKAGE.parent)
    assert host.exposed_checkout([checkout]) == checkout
    assert host.exposed_checkout([str(Path(checkout).parent)]) == str(Path(checkout).parent)
    assert host.exposed_checkout([checkout + "/.venv", "/usr"]) is None


def test_the_runner_s_report_is_data(tmp_path):
    (tmp_path / "run.json").write_text('{"status": "kernel_died", "message": "the Python kernel died", '
                                       '"capture_errors": ["guard: x"]}')
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

    probe = ("import sys, runner; E = runner.Execute; "
             "print(E.__module__, E.interrupt_on_timeout.default_value, E().allow_errors, "
             "any(m.startswith(('nbgrader', 'nbconvert', 'sqlalchemy')) for m in sys.modules)); "
             "from nbgrader.preprocessors import Execute, ClearSolutions; import nbgrader.apps, nbconvert; "
             "print(Execute.__name__, ClearSolutions.__name__)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(payload.__file__).parent, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["nbgrader.preprocessors.execute", "True", "True", "False", "Execute", "ClearSolutions"]
