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
    proc = subprocess.run([sys.executable, "-c", IMPORTED], capture_output=True, text=True, timeout=120,
                          cwd=KIT_PACKAGE.parent)
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
    fields = dict(lab={"seed": "1"}, grading={}, sandbox={}, given_code="x = 1\n", spam_data_py=b"# data\n",
                  public_splits=b"public\n", hidden_test=b"hidden\n")
    return job_module.GradingJob(**{**fields, **changes})


def test_the_job_folder_is_written_whole_and_private(tmp_path, monkeypatch):
    monkeypatch.setattr(job_module.tempfile, "tempdir", str(tmp_path))
    job = _job()
    folder = job_module.job_dir(job)
    assert folder.parent == tmp_path and (folder / "ready").is_file()
    assert (folder / "test.tsv").read_bytes() == b"hidden\n" and (folder / "lab" / "spam_data.py").is_file()
    assert folder.stat().st_mode & 0o077 == 0   # the hidden split is not readable by other users
    assert job_module.job_dir(job) == folder and len(list(tmp_path.iterdir())) == 1


def test_a_half_written_job_folder_is_never_used(tmp_path, monkeypatch):
    """A folder without its ``ready`` mark (a process killed while writing it) is left alone; this process
    uses a complete copy of its own."""
    monkeypatch.setattr(job_module.tempfile, "tempdir", str(tmp_path))
    job = _job(given_code="y = 2\n")
    stale = tmp_path / f"spamkit-job-{job_module.os.getuid()}-{job.digest[:16]}"
    (stale / "lab").mkdir(parents=True)
    (stale / "test.tsv").write_bytes(b"hid")
    folder = job_module.job_dir(job)
    assert folder != stale and (folder / "ready").is_file()
    assert (folder / "test.tsv").read_bytes() == b"hidden\n" and (folder / "given_code.py").read_text() == "y = 2\n"
