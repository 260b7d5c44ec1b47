"""One place for each default: the kit's settings classes hold the course's values (the calibrated thresholds
among them), course_config.py sets only what the course changes, and every setting has its help.

No TensorFlow, no sandbox, no real data: the grading jobs are built on generated data (``sample_data``), and
the hidden checks run on stored-shape evidence with the grader's figures given, as the check process runs them.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import sample_data
from evidence_samples import TRAIN_STEPS, reference_evidence, run_hidden_checks
from kit_testing import ASSIGNMENT, REPO

from autograder import cli
from autograder.grading import engine
from autograder.grading.evidence import EVIDENCE_DIR, EVIDENCE_FILE, WEIGHTS_FILE
from autograder.grading.job import lab_loader, make_job
from autograder.model import Status
from autograder.settings import load_course_config

KIT = REPO / "autograder"

# A course that changes nothing the kit decides: its id, and where its data is.
MINIMAL_COURSE_CONFIG = """\
import os
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "spam-transformer-lab"
c.Lab.data_dir = os.environ.get("SPAM_LAB_DATA_DIR", "")
"""


def configurable_classes_in_the_kit() -> dict[str, str]:
    """Every class in autograder/ that declares a setting (a trait tagged config=True): name -> file."""
    found = {}
    for path in sorted(KIT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "tag"
                and any(k.arg == "config" for k in call.keywords)
                for call in ast.walk(node)
            ):
                found[node.name] = path.relative_to(REPO).as_posix()
    return found


def test_every_setting_of_the_kit_is_listed_with_its_help(capsys):
    listed = {cls.__name__: cls for cls in cli.setting_classes()}
    missing = {name: where for name, where in configurable_classes_in_the_kit().items() if name not in listed}
    assert not missing, f"settings classes not in autograder.cli.setting_classes (so not in --help-all): {missing}"
    assert cli.main(["--help-all"]) == 0
    shown = capsys.readouterr().out
    for cls in listed.values():
        for name, trait in cls.class_own_traits(config=True).items():
            assert (trait.help or "").strip(), f"{cls.__name__}.{name} has no help="
            assert f"--{cls.__name__}.{name}=" in shown and trait.help.split()[0] in shown


def test_course_config_sets_only_what_the_course_changes(monkeypatch, tmp_path):
    monkeypatch.setenv("SPAM_LAB_DATA_DIR", str(tmp_path))
    config = load_course_config(REPO)
    classes = {cls.__name__: cls for cls in cli.setting_classes()}
    set_here = {
        (section, name): value for section in config if section in classes for name, value in config[section].items()
    }
    assert set_here, "course_config.py sets no kit setting at all"
    for (section, name), value in set_here.items():
        traits = classes[section].class_traits(config=True)
        assert name in traits, f"course_config.py sets {section}.{name}, which is no setting (a typo?)"
        assert value != traits[name].default(), (
            f"course_config.py sets {section}.{name} = {value!r}, the kit's "
            "default: leave it out (one place for each default)"
        )


@pytest.fixture
def generated_data(monkeypatch, tmp_path) -> Path:
    """SPAM_LAB_DATA_DIR = a folder of generated data that the lab's loader accepts."""
    spam_data = lab_loader(REPO / "source" / ASSIGNMENT)  # the module make_job loads for this course
    folder = tmp_path / "data"
    sample_data.install(monkeypatch, spam_data, folder)
    monkeypatch.setenv("SPAM_LAB_DATA_DIR", str(folder))
    return folder


def jobs(tmp_path: Path):
    """The grading job of the shipped course_config.py, and of one that sets only the id and the data."""
    minimal = tmp_path / "minimal"
    minimal.mkdir()
    (minimal / "course_config.py").write_text(MINIMAL_COURSE_CONFIG)
    return make_job(load_course_config(REPO), REPO), make_job(load_course_config(minimal), REPO)


def test_a_course_config_with_only_the_id_and_the_data_gets_the_shipped_job(generated_data, tmp_path):
    shipped, minimal = jobs(tmp_path)
    assert shipped.lab["data_dir"] == str(generated_data)
    assert minimal.lab == shipped.lab
    assert minimal.grading == shipped.grading
    assert minimal.sandbox == shipped.sandbox
    assert minimal.digest == shipped.digest  # so a stored result of either is the other's


def grade(job, tmp_path: Path, name: str, evidence: dict, regraded: dict) -> dict:
    """The real hidden checks on ``evidence``, told what ``job`` tells them; the grader's figures given (the
    check process would compute them from the weights). Returns {check id: (passed, score)}."""
    scratch = tmp_path / name
    (scratch / EVIDENCE_DIR).mkdir(parents=True)
    (scratch / EVIDENCE_DIR / EVIDENCE_FILE).write_text(json.dumps(evidence))
    (scratch / EVIDENCE_DIR / WEIGHTS_FILE).write_bytes(b"\x89HDF\r\n\x1a\n weights")
    context = {**engine.check_context(scratch, job, Status.OK), "training_steps": TRAIN_STEPS, "regraded": regraded}
    return {r["id"]: (r["passed"], r["score"]) for r in run_hidden_checks(scratch, context)}


def test_both_course_configs_grade_the_same(generated_data, tmp_path):
    """A borderline submission, graded on stored evidence through the real checks: the calibrated defaults
    decide it, whichever course_config.py the job came from (the kit's old defaults, 0.93 / 0.93 / 0.02,
    would pass its hidden AUC and its honesty)."""
    shipped, minimal = jobs(tmp_path)
    evidence = reference_evidence()
    evidence["history"]["history"]["val_auc"] = [0.92]  # reported
    regraded = {"val_auc": 0.93, "hidden_auc": 0.94}  # the grader's own, on the weights
    by_shipped = grade(shipped, tmp_path, "shipped", evidence, regraded)
    by_minimal = grade(minimal, tmp_path, "minimal", evidence, regraded)
    assert by_minimal == by_shipped
    assert by_shipped["test_val_auc_threshold"][0]  # 0.93 >= 0.91
    assert len(by_shipped) > 10
    # hidden AUC 0.94 < 0.95, and |0.92 - 0.93| > 0.005: nothing else fails
    assert {check for check, (passed, _) in by_shipped.items() if not passed} == {
        "test_hidden_auc",
        "test_reported_val_auc_is_honest",
    }
