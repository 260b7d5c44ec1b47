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
