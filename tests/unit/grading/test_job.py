"""The grading job's digest covers the code that decides a grade: the grading path and what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from autograder.grading import job as job_module
from autograder.grading.job import GRADING_CODE, KIT_PACKAGE, grading_code_digest

# Every kit module the grading path imports: engine, check process (and the checks' conftest), sandbox, payload.
IMPORTED = """
import json, sys
import autograder.grading.engine, autograder.grading.check_process, autograder.grading.reevaluate
import autograder.grading.checks.conftest, autograder.sandbox.payload.capture
print(json.dumps(sorted(m.__file__ for name, m in sys.modules.items()
                        if name.startswith("autograder") and getattr(m, "__file__", None))))
"""


def covered(path: Path) -> bool:
    relative = path.relative_to(KIT_PACKAGE).as_posix()
    return any(relative == entry or relative.startswith(entry + "/") for entry in GRADING_CODE)


def test_the_digest_covers_every_module_the_grading_path_imports():
    proc = subprocess.run(
        [sys.executable, "-c", IMPORTED], capture_output=True, text=True, timeout=120, cwd=KIT_PACKAGE.parent
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = [Path(p) for p in json.loads(proc.stdout)]
    assert len(imported) > 15
    assert [str(p) for p in imported if not covered(p)] == []
    # and the course layer (batch, exports, report, the command line) is not part of it
    assert not covered(KIT_PACKAGE / "course" / "batch.py") and not covered(KIT_PACKAGE / "cli.py")
    assert covered(KIT_PACKAGE / "sandbox" / "payload" / "runner.py")
    assert covered(KIT_PACKAGE / "grading" / "checks" / "test_fit.py")


def test_the_digest_changes_with_the_grading_code(tmp_path, monkeypatch):
    for entry in GRADING_CODE:
        source = KIT_PACKAGE / entry
        target = tmp_path / entry
        if source.is_dir():
            for file in source.rglob("*.py"):
                (target / file.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
                (target / file.relative_to(source)).write_bytes(file.read_bytes())
        else:
            target.write_bytes(source.read_bytes())
    (tmp_path / "cli.py").write_text("# not grading code\n")
    monkeypatch.setattr(job_module, "KIT_PACKAGE", tmp_path)
    grading_code_digest.cache_clear()
    try:
        copy = grading_code_digest()
        (tmp_path / "cli.py").write_text("# changed, still not grading code\n")
        grading_code_digest.cache_clear()
        assert grading_code_digest() == copy
        fit = tmp_path / "grading" / "checks" / "test_fit.py"
        fit.write_text(fit.read_text().replace("points=2", "points=3", 1))
        grading_code_digest.cache_clear()
        assert grading_code_digest() != copy
    finally:
        grading_code_digest.cache_clear()


def _job(**changes) -> job_module.GradingJob:
    fields = dict(
        lab={"seed": "1"},
        grading={},
        sandbox={},
        given_code="x = 1\n",
        spam_data_py=b"# data\n",
        public_splits=b"public\n",
        hidden_test=b"hidden\n",
    )
    return job_module.GradingJob(**{**fields, **changes})


def test_the_job_folder_is_written_whole_and_private(tmp_path, monkeypatch):
    monkeypatch.setattr(job_module.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(job_module, "_JOB_DIRS", {})
    job = _job()
    folder = job_module.job_dir(job)
    assert folder.parent == tmp_path
    assert (folder / "test.tsv").read_bytes() == b"hidden\n" and (folder / "lab" / "spam_data.py").is_file()
    assert folder.stat().st_mode & 0o077 == 0  # the hidden split is not readable by other users
    assert job_module.job_dir(job) == folder and len(list(tmp_path.iterdir())) == 1


def test_a_folder_at_a_predictable_path_is_never_trusted(tmp_path, monkeypatch):
    """Another local user can make /tmp/spamkit-job-<uid>-<digest> first, marked ready, with forged splits and
    given code: this process uses only a folder it made itself."""
    monkeypatch.setattr(job_module.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(job_module, "_JOB_DIRS", {})
    job = _job(given_code="y = 2\n")
    planted = tmp_path / f"spamkit-job-{job_module.os.getuid()}-{job.digest[:16]}"
    (planted / "lab").mkdir(parents=True)
    for name, content in (("ready", ""), ("test.tsv", "forged\n"), ("given_code.py", "import evil\n")):
        (planted / name).write_text(content)
    planted.chmod(0o700)
    folder = job_module.job_dir(job)
    assert folder != planted
    assert (folder / "test.tsv").read_bytes() == b"hidden\n" and (folder / "given_code.py").read_text() == "y = 2\n"


def test_a_job_folder_that_changed_is_made_again(tmp_path, monkeypatch):
    """Checked before every use: a folder opened to others, handed to another owner or swapped for a symlink
    is not used again."""
    monkeypatch.setattr(job_module.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(job_module, "_JOB_DIRS", {})
    job = _job()
    first = job_module.job_dir(job)
    first.chmod(0o755)
    second = job_module.job_dir(job)
    assert second != first and (second / "test.tsv").read_bytes() == b"hidden\n"
    elsewhere = tmp_path / "elsewhere"
    second.rename(elsewhere)
    second.symlink_to(elsewhere, target_is_directory=True)
    third = job_module.job_dir(job)
    assert third not in (first, second) and not third.is_symlink()
    if job_module.os.geteuid() == 0:  # only root can give a folder away
        job_module.os.chown(third, 12345, -1)
        fourth = job_module.job_dir(job)
        assert fourth != third and fourth.stat().st_uid == 0


def test_the_job_folders_are_removed_when_the_batch_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(job_module.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(job_module, "_JOB_DIRS", {})
    folders = [job_module.job_dir(_job()), job_module.job_dir(_job(given_code="z = 3\n"))]
    kept = tmp_path / "not_ours"
    kept.mkdir()
    job_module.remove_job_dirs()
    assert not any(folder.exists() for folder in folders) and kept.is_dir()
    again = job_module.job_dir(_job())
    assert again.is_dir() and again not in folders


def test_a_forked_child_makes_its_own_job_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(job_module.tempfile, "tempdir", str(tmp_path))
    job = _job(given_code="w = 4\n")
    parent = job_module.job_dir(job)
    read, write = job_module.os.pipe()
    pid = job_module.os.fork()
    if pid == 0:  # the child: its own folder, then gone without running the parent's exit handlers
        job_module.os.write(write, str(job_module.job_dir(job)).encode())
        job_module.os._exit(0)
    job_module.os.close(write)
    child = job_module.os.read(read, 4096).decode()
    job_module.os.waitpid(pid, 0)
    assert child and Path(child) != parent and parent.is_dir()
    job_module.remove_job_dirs()


# A stand-in for the lab's loader: what make_job calls, with splits that name the course they come from.
FAKE_LOADER = """
from dataclasses import dataclass
from pathlib import Path

COURSE = {course!r}


@dataclass(frozen=True)
class Split:
    name: str


def load_splits(dataset, data_dir, seed):
    return {{"train": Split(COURSE), "test": Split(COURSE)}}


def write_splits_file(splits, path, names=("train",)):
    Path(path).write_text("".join(f"{{name}} {{splits[name].name}}\\n" for name in names))
    return Path(path)
"""


def _course(root: Path, course: str) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    lab_dir = root / "source" / "spam_transformer"
    lab_dir.mkdir(parents=True)
    (lab_dir / "spam_data.py").write_text(FAKE_LOADER.format(course=course))
    given = new_code_cell(f"course = {course!r}\n", metadata={"nbgrader": {"grade_id": "setup", "locked": True}})
    nbformat.write(new_notebook(cells=[given]), lab_dir / "spam_transformer.ipynb")
    return root


def test_two_courses_in_one_process_each_get_their_own_lab_loader(tmp_path):
    from traitlets.config import Config

    first, second = _course(tmp_path / "first", "first"), _course(tmp_path / "second", "second")
    path_before = list(sys.path)
    jobs = [job_module.make_job(Config(), root, sandboxes_at_once=1) for root in (first, second, first)]
    assert [job.public_splits for job in jobs] == [b"train first\n", b"train second\n", b"train first\n"]
    assert [job.hidden_test for job in jobs] == [b"test first\n", b"test second\n", b"test first\n"]
    assert jobs[0].digest == jobs[2].digest != jobs[1].digest
    assert sys.path == path_before  # imported by path, never through sys.path
    loaders = [job_module.lab_loader(root / "source" / "spam_transformer") for root in (first, second, first)]
    assert [m.COURSE for m in loaders] == ["first", "second", "first"]
    assert loaders[0] is loaders[2] and loaders[0] is not loaders[1]  # one module per course folder, kept
    assert loaders[0].__name__ != loaders[1].__name__ and "spam_data" not in {m.__name__ for m in loaders}
    (second / "source" / "spam_transformer" / "spam_data.py").write_text(FAKE_LOADER.format(course="edited"))
    assert job_module.lab_loader(second / "source" / "spam_transformer").COURSE == "edited"  # the file changed
