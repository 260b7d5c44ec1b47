"""The warm check process: same figures as a fresh process, no state between submissions, survives its child dying."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
from evidence_samples import reference_evidence
from kit_testing import REPO

from autograder.errors import CheckProcessFailed
from autograder.grading import check_process, engine
from autograder.grading.job import job_context, make_job
from autograder.settings import load_course_config

# Saves the given model's weights twice (as built, then with weights drawn at random) and scores each
# with reevaluate.py in this fresh process: the figures the warm runner must reproduce.
MAKE_WEIGHTS = """
import json, sys
import numpy as np
from pathlib import Path
from autograder.grading.reevaluate import given_namespace, reevaluate_weights
context, out = json.loads(sys.argv[1]), Path(sys.argv[2])
given = given_namespace(context)
model, figures = given["model"], {}
for name in ("built", "random"):
    if name == "random":
        rng = np.random.default_rng(7)
        model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    (out / name).mkdir()
    model.save_weights(out / name / "model.weights.h5")
    figures[name] = reevaluate_weights(context, out / name / "model.weights.h5", given)
print(json.dumps(figures))
"""


@pytest.fixture(scope="module")
def job():
    return make_job(load_course_config(REPO), REPO)


@pytest.fixture(scope="module")
def submissions(job, tmp_path_factory):
    """Two evidence folders (reference evidence, different weights) and the AUCs a fresh process gives them."""
    root = tmp_path_factory.mktemp("evidence")
    proc = subprocess.run(
        [sys.executable, "-c", MAKE_WEIGHTS, json.dumps(job_context(job)), str(root)],
        env=check_process.check_env(1),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in figures:
        (root / name / "evidence.json").write_text(json.dumps(reference_evidence()))
    return root, figures


def grade(job, scratch: Path) -> dict:
    """The check records of one submission whose evidence is in scratch, by id."""
    (scratch / "evidence").mkdir(exist_ok=True)
    records = engine.check_evidence(scratch, job, "ok")
    return {r.id: r.to_dict() for r in records}


def scratch_for(tmp_path: Path, evidence: Path, name: str) -> Path:
    scratch = tmp_path / name
    scratch.mkdir()
    (scratch / "evidence").symlink_to(evidence, target_is_directory=True)
    return scratch


def test_warm_runner_gives_a_fresh_process_figures_and_keeps_nothing_between_submissions(job, submissions, tmp_path):
    root, figures = submissions
    first = grade(job, scratch_for(tmp_path, root / "built", "a"))
    runner = check_process.warm_process(job.digest, job_context(job), 1)
    pid = runner._proc.pid
    second = grade(job, scratch_for(tmp_path, root / "random", "b"))
    again = grade(job, scratch_for(tmp_path, root / "built", "c"))
    assert runner._proc.pid == pid, "one warm process serves every submission"
    for records, name in ((first, "built"), (second, "random"), (again, "built")):
        assert records["test_hidden_auc"]["values"]["hidden_auc"] == pytest.approx(
            figures[name]["hidden_auc"], abs=1e-6
        )
        assert records["test_val_auc_threshold"]["values"]["val_auc"] == pytest.approx(
            figures[name]["val_auc"], abs=1e-6
        )
        assert records["test_optimizer_is_adam"]["passed"] and records["test_epochs"]["passed"]
    assert figures["built"]["val_auc"] != pytest.approx(figures["random"]["val_auc"], abs=1e-4)
    assert first == again


def test_a_dead_check_process_is_replaced(job, submissions, tmp_path):
    root, figures = submissions
    runner = check_process.warm_process(job.digest, job_context(job), 1)
    before = grade(job, scratch_for(tmp_path, root / "built", "a"))
    old = runner._proc.pid
    os.kill(old, signal.SIGKILL)
    time.sleep(0.5)
    after = grade(job, scratch_for(tmp_path, root / "built", "b"))
    assert runner._proc.pid != old and after == before


def test_a_hung_check_process_is_killed(job, submissions, tmp_path):
    root, _ = submissions
    runner = check_process.warm_process(job.digest, job_context(job), 1)
    grade(job, scratch_for(tmp_path, root / "built", "a"))
    child = runner._proc
    os.kill(child.pid, signal.SIGSTOP)
    scratch = scratch_for(tmp_path, root / "built", "b")
    (scratch / "check_context.json").write_text(json.dumps({"evidence_dir": str(scratch / "evidence")}))
    with pytest.raises(CheckProcessFailed, match="no answer in 2 s"):
        runner.run(scratch / "check_context.json", scratch / "check_results.json", scratch, timeout=2)
    assert child.poll() is not None and runner._proc is None


def test_without_the_check_process_the_checks_still_run_and_the_auc_checks_say_grader_error(
    job, submissions, tmp_path, monkeypatch
):
    class Broken:
        def run(self, *args, **kwargs):
            raise CheckProcessFailed("the check process exited")

    monkeypatch.setattr(check_process, "warm_process", lambda *args: Broken())
    records = grade(job, scratch_for(tmp_path, submissions[0] / "built", "a"))
    assert records["test_optimizer_is_adam"]["passed"] and records["test_all_metrics"]["passed"]
    for check in ("test_val_auc_threshold", "test_reported_val_auc_is_honest", "test_hidden_auc"):
        assert not records[check]["passed"]
        assert "the grader could not complete this check" in records[check]["message"]
        assert "CheckProcessFailed" in records[check]["detail"]
    assert not records["test_epochs"]["passed"] and "KeyError" in records["test_epochs"]["detail"]


def cgroups_here() -> bool:
    """Whether this host gives the grader a cgroup for the check process."""
    group = check_process.memory_cgroup(64)
    if group is not None:
        group.remove()
    return group is not None


def test_a_weights_file_that_declares_too_much_is_refused_before_keras_reads_it(job, submissions, tmp_path):
    root, _ = submissions
    forged = tmp_path / "forged"
    shutil.copytree(root / "built", forged)
    with h5py.File(forged / "model.weights.h5", "a") as f:  # 4 TB declared in a few bytes, never written
        f.create_dataset("layers/dense/vars/2", shape=(10**6, 10**6), dtype="f4", chunks=(1000, 1000))
    grade(job, scratch_for(tmp_path, root / "built", "a"))
    runner = check_process.warm_process(job.digest, job_context(job), 1)
    pid = runner._proc.pid
    records = grade(job, scratch_for(tmp_path, forged, "b"))
    for check in ("test_val_auc_threshold", "test_hidden_auc"):
        assert not records[check]["passed"] and records[check]["detail"] == ""  # the student's, not a grader error
        assert "unexpected weights of shape (1000000, 1000000)" in records[check]["message"]
    assert runner._proc.pid == pid


def test_the_check_process_gets_no_secrets_and_a_memory_cgroup_of_its_own(job, submissions, tmp_path, monkeypatch):
    if not cgroups_here():
        pytest.skip("this host gives the grader no cgroup")
    monkeypatch.setenv("KIT_DB_URL", "postgresql://grader:hunter2@db/course")
    check_process.close_warm()
    grade(job, scratch_for(tmp_path, submissions[0] / "built", "a"))
    runner = check_process.warm_process(job.digest, job_context(job), 1)
    pid, group = runner._proc.pid, runner._group
    assert b"hunter2" not in Path(f"/proc/{pid}/environ").read_bytes()
    assert pid in group.tasks()
    memory = group.dirs["memory"]
    limit = memory / ("memory.max" if group.version == "v2" else "memory.limit_in_bytes")
    assert int(limit.read_text()) == job.grading["check_memory_mb"] << 20
    check_process.close_warm()
    assert not memory.exists()


def test_without_a_cgroup_the_check_process_has_an_rlimit_data(job, submissions, tmp_path, monkeypatch):
    """RLIMIT_DATA at Grading.check_memory_mb, and the figures are still those of a fresh process."""
    root, figures = submissions
    monkeypatch.setattr(check_process, "memory_cgroup", lambda memory_mb: None)
    check_process.close_warm()
    records = grade(job, scratch_for(tmp_path, root / "built", "a"))
    runner = check_process.warm_process(job.digest, job_context(job), 1)
    limits = Path(f"/proc/{runner._proc.pid}/limits").read_text()
    data = next(line for line in limits.splitlines() if line.startswith("Max data size")).split()
    assert int(data[3]) == int(data[4]) == job.grading["check_memory_mb"] << 20
    assert records["test_hidden_auc"]["values"]["hidden_auc"] == pytest.approx(figures["built"]["hidden_auc"], abs=1e-6)
    check_process.close_warm()


@pytest.mark.parametrize("limit", ["cgroup", "rlimit"])
def test_a_check_process_out_of_memory_is_reported_as_such(job, submissions, tmp_path, monkeypatch, limit):
    if limit == "rlimit":
        monkeypatch.setattr(check_process, "memory_cgroup", lambda memory_mb: None)
    elif not cgroups_here():
        pytest.skip("this host gives the grader no cgroup")
    small = dataclasses.replace(job, grading={**job.grading, "check_memory_mb": 100})
    records = grade(small, scratch_for(tmp_path, submissions[0] / "built", "a"))
    for check in ("test_val_auc_threshold", "test_reported_val_auc_is_honest", "test_hidden_auc"):
        assert "the grader could not complete this check" in records[check]["message"]
        assert "the check process ran out of memory (its limit: 100 MB" in records[check]["detail"]
    check_process.close_warm()
