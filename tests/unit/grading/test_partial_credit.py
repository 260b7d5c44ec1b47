"""Grading the work recorded before a crash or a limit (no TensorFlow, no sandbox, no notebook run).

A run that ends early leaves no final evidence, only the guard's last checkpoint (capture.py's
``_Checkpoint``, brought back under ``evidence.CHECKPOINT_DIR``). These tests hand-make evidence folders
and runs: which evidence the engine checks (``evidence_to_check``), what the checks are told
(``check_context``), what the real hidden checks then decide and say (run by pytest in a subprocess,
as the check process runs them), what a recheck reads, and what the instructor reads.
"""

from __future__ import annotations

import io
import json
import os
import sys
import types
from pathlib import Path

import jsonschema
import pytest
from corpus import check_table
from evidence_samples import CONTEXT, reference_evidence, run_hidden_checks

from autograder.errors import EvidenceMissing
from autograder.grading import check_process, engine
from autograder.grading.evidence import (
    CHECKPOINT_DIR,
    EVIDENCE_DIR,
    EVIDENCE_FILE,
    NOT_RECORDED,
    PLOT_HISTORY,
    SCHEMA,
    WEIGHTS_FILE,
    checkpoint_evidence,
    checkpoint_files,
    load_evidence,
    not_checked,
    sandbox_files,
    weights_file,
)
from autograder.model import CheckResult, GradingResult, RunOutcome, Status, Summary
from autograder.sandbox.payload import capture
from autograder.settings import Grading

OOM = RunOutcome(Status.OUT_OF_MEMORY, "used more than 4096 MB of memory while cell `plot` was running")
STOP = "Your notebook used too much memory: used more than 4096 MB of memory while cell `plot` was running"
REGRADED = {"val_auc": 0.9765, "hidden_auc": 0.9887}  # "the grader's figures" for any weights file
WEIGHTS = b"\x89HDF\r\n\x1a\n weights"
GRADING = {name: getattr(Grading(), name) for name in Grading().trait_names(config=True)}


def checkpoint(*recorded: str) -> dict:
    """The reference evidence as a checkpoint that recorded only ``recorded`` (capture.py's shape)."""
    evidence = {**reference_evidence(), "checkpoint": True}
    for part in ("compile", "history", "weights", "plots"):
        if part not in recorded:
            evidence[part] = None
            evidence["errors"][part] = NOT_RECORDED
    jsonschema.validate(evidence, SCHEMA)
    return evidence


def files(evidence: dict | None, weights: bool = True) -> dict[str, bytes]:
    kept = {} if evidence is None else {EVIDENCE_FILE: json.dumps(evidence).encode()}
    if weights:
        kept[WEIGHTS_FILE] = WEIGHTS
    return kept


def run(outcome=OOM, final=None, saved=None) -> engine.SandboxRun:
    return engine.SandboxRun(outcome, None, final or {}, 30.0, saved)


def job(**grading):
    return types.SimpleNamespace(grading={**GRADING, **grading}, sandbox={"cell_timeout": 120}, digest="f" * 64)


# --- which evidence is checked ------------------------------------------------------------


def test_the_checkpoint_comes_back_beside_the_evidence_under_its_own_folder():
    assert CHECKPOINT_DIR == "checkpoint/evidence"
    assert checkpoint_files() == {f"checkpoint/{path}": size for path, size in sandbox_files().items()}


@pytest.mark.parametrize("status", [s for s in Status if s.kind == "run" and s not in (Status.OK, Status.CELL_TIMEOUT)])
def test_a_run_that_ended_early_without_final_evidence_is_checked_on_its_checkpoint(status):
    saved = files(checkpoint("compile", "history", "weights"))
    evidence, partial = engine.evidence_to_check(run(RunOutcome(status, "stopped"), saved=saved), True)
    assert partial and evidence == saved


def test_the_checkpoint_is_ignored_when_it_is_not_needed_or_not_wanted():
    saved = files(checkpoint("compile"))
    final = files(reference_evidence())
    assert engine.evidence_to_check(run(final=final, saved=saved), True) == (final, False)  # the end was reached
    for status in (Status.OK, Status.CELL_TIMEOUT):  # ran to its end
        assert engine.evidence_to_check(run(RunOutcome(status), saved=saved), True) == ({}, False)
    assert engine.evidence_to_check(run(saved=saved), False) == ({}, False)  # setting off
    assert engine.evidence_to_check(run(saved=None), True) == ({}, False)  # no checkpoint
    assert engine.evidence_to_check(run(saved={}), True) == ({}, False)


def test_only_a_valid_checkpoint_is_used_and_only_the_weights_it_names():
    assert checkpoint_evidence(files(checkpoint("compile"), weights=False)) == files(checkpoint("compile"), False)
    # a weights file of an earlier model: the checkpoint says none, so none is kept or checked
    assert checkpoint_evidence(files(checkpoint("compile"))) == files(checkpoint("compile"), False)
    both = files(checkpoint("compile", "history", "weights"))
    assert checkpoint_evidence(both) == both
    final = reference_evidence()  # not marked as a checkpoint
    assert checkpoint_evidence(files(final)) is None
    bad = checkpoint("compile")
    bad["history"] = {"epoch": ["0"]}
    assert checkpoint_evidence(files(bad)) is None
    assert checkpoint_evidence({EVIDENCE_FILE: b"{not json"}) is None
    assert checkpoint_evidence({WEIGHTS_FILE: WEIGHTS}) is None


# --- the checks, as the check process runs them ------------------------------------------------


def fake_check_process(seen: list):
    """check_process.check_in_child, with the child's part done here: the grader's figures for the weights the
    evidence names (or why there are none, as ``check_process.regrade`` says), then the real checks in pytest."""

    def check_in_child(context, scratch, job_digest, job_context, cpu_threads, timeout):
        folder = Path(context["evidence_dir"])
        seen.append({"context": context, "files": sorted(p.name for p in folder.iterdir())})
        try:
            weights_file(folder, load_evidence(folder))
            regraded = REGRADED
        except EvidenceMissing as exc:
            regraded = {"error": "EvidenceMissing", "message": str(exc)}
        context = {**context, "training_steps": CONTEXT["training_steps"], "regraded": regraded}
        return run_hidden_checks(scratch, context)

    return check_in_child


@pytest.fixture
def checked(monkeypatch):
    """Grade a SandboxRun with the real checks: (result, [what each check session saw])."""
    seen: list = []
    monkeypatch.setattr(check_process, "check_in_child", fake_check_process(seen))
    monkeypatch.setattr(engine, "job_context", lambda job: {})

    def grade(sandbox_run, **grading):
        return engine.check_run(sandbox_run, job(**grading)), seen

    return grade


def cells() -> dict[str, set]:
    table = check_table()
    return {
        cell: {c for c, info in table.items() if info["cell"] == cell}
        for cell in ("test_compile", "test_fit", "test_plot")
    }


def test_a_checkpoint_with_the_compile_only_earns_the_compile_checks(checked):
    result, seen = checked(run(saved=files(checkpoint("compile"))))
    assert result.partial and result.status is Status.OUT_OF_MEMORY
    assert seen[0]["context"]["partial"] is True and seen[0]["context"]["run_message"] == OOM.message
    assert seen[0]["context"]["run_status"] == "out_of_memory" and seen[0]["files"] == [EVIDENCE_FILE]
    by_cell = cells()
    assert {c.id for c in result.checks if c.passed} == by_cell["test_compile"]
    assert result.score == 5.0
    for check in result.checks:
        if check.cell == "test_fit":
            assert check.message.startswith(f"not checked: the run ended early ({STOP}) before "), check.message
            assert check.detail == ""
        if check.cell == "test_plot":
            assert check.message == f"not checked: the run ended early ({STOP}) before plot_history was recorded"
    assert result.check("test_history_keys").message.endswith("before history = model.fit(...) was recorded")
    assert result.check("test_hidden_auc").message.endswith("before a trained model (model.fit) was recorded")
    assert result.evidence == files(checkpoint("compile"), weights=False)  # what was checked is what is kept


def test_a_checkpoint_with_compile_history_and_weights_gets_the_grader_s_figures(checked):
    saved = files(checkpoint("compile", "history", "weights"))
    result, seen = checked(run(saved=saved))
    assert seen[0]["files"] == [EVIDENCE_FILE, WEIGHTS_FILE]
    by_cell = cells()
    assert {c.id for c in result.checks if c.passed} == by_cell["test_compile"] | by_cell["test_fit"]
    assert result.check("test_hidden_auc").values == {"hidden_auc": REGRADED["hidden_auc"]}
    assert result.check("test_val_auc_threshold").values["val_auc"] == REGRADED["val_auc"]
    assert all(c.message.endswith("before plot_history was recorded") for c in result.checks if c.cell == "test_plot")
    assert result.partial and result.evidence == saved


def test_a_part_the_checkpoint_recorded_is_judged_as_usual(checked):
    """Recorded, but wrong: the check's own message, not the stop's."""
    evidence = checkpoint("compile")
    evidence["compile"]["loss"] = {"kind": "str", "value": "mse"}
    result, _ = checked(run(saved=files(evidence, weights=False)))
    assert not result.check("test_loss_is_binary_crossentropy").passed
    assert "not checked" not in result.check("test_loss_is_binary_crossentropy").message


def test_with_partial_credit_off_every_check_fails_as_before(checked):
    result, seen = checked(run(saved=files(checkpoint("compile", "history", "weights"))), partial_credit_on_crash=False)
    assert not result.partial and result.score == 0 and result.evidence == {}
    assert seen[0]["files"] == [] and seen[0]["context"]["partial"] is False
    assert {c.message for c in result.checks} == {"the notebook did not run to its end, so nothing could be checked"}


def test_final_evidence_is_checked_and_the_checkpoint_ignored(checked):
    final = files(reference_evidence())
    result, seen = checked(run(RunOutcome(Status.OK), final=final, saved=files(checkpoint("compile"))))
    assert not result.partial and result.evidence == final and seen[0]["context"]["partial"] is False
    assert all(c.passed for c in result.checks)


# --- rechecks -----------------------------------------------------------------------------------


def recheck_contexts(monkeypatch, result, kept, **grading):
    seen = []

    def check_in_child(context, scratch, *args, **kwargs):
        folder = Path(context["evidence_dir"])
        seen.append({"context": context, "files": sorted(p.name for p in folder.iterdir())})
        return [CheckResult("test_hidden_auc", "test_fit", "Hidden", 2.0, False, 0.0, "again").to_dict()]

    monkeypatch.setattr(check_process, "check_in_child", check_in_child)
    monkeypatch.setattr(engine, "job_context", lambda job: {})
    again = engine.recheck(result, kept, job(**grading), "test_hidden_auc")
    return again, seen[0]


def test_a_recheck_reads_the_checkpoint_as_the_grading_did(monkeypatch):
    kept = files(checkpoint("compile", "history", "weights"))
    result = GradingResult.of_run(OOM, None, [], 0.0, 0.0, evidence=kept, partial=True)
    again, seen = recheck_contexts(monkeypatch, result, kept)
    assert seen["context"]["partial"] is True and seen["context"]["run_message"] == OOM.message
    assert seen["files"] == [EVIDENCE_FILE, WEIGHTS_FILE]
    assert again.partial and again.evidence == kept
    off, seen = recheck_contexts(monkeypatch, result, kept, partial_credit_on_crash=False)
    assert seen["context"]["partial"] is False and seen["files"] == [] and off.evidence == kept


def test_the_context_tells_the_checks_how_the_run_ended(tmp_path):
    context = engine.check_context(tmp_path, job(), Status.KERNEL_DIED, run_message="the kernel died", partial=True)
    assert (context["run_status"], context["run_message"], context["partial"]) == (
        "kernel_died",
        "the kernel died",
        True,
    )
    assert context["evidence_dir"] == str(tmp_path / EVIDENCE_DIR) and context["partial_credit_on_crash"] is True
    assert engine.check_context(tmp_path, job(), Status.OK)["partial"] is False
    assert not_checked("timeout", "", "plots") == (
        "not checked: the run ended early (Your notebook did not finish in time) before plot_history was recorded"
    )


# --- what the instructor reads ---------------------------------------------------------------------


def test_the_reports_say_the_result_was_graded_on_the_work_recorded_before_the_run_ended():
    from autograder.course.autograde import report_text
    from autograder.course.report import attention

    check = CheckResult("test_auc_metric", "test_compile", "AUC", 1.0, True, 1.0)
    partial = GradingResult.of_run(OOM, None, [check], 0.0, 0.0, evidence={}, partial=True)
    text = report_text([check], 5.0, partial)
    assert "graded on the work recorded before the run ended" in text.replace("\n    ", " ")
    assert "Your notebook used too much memory" in text
    whole = GradingResult.of_run(OOM, None, [check], 0.0, 0.0, evidence={})
    assert "graded on the work" not in report_text([check], 5.0, whole)
    rows = attention({"ann": Summary.of_result(partial, "k", "d"), "ben": Summary.of_result(whole, "k2", "d2")})
    assert [r["reason"] for r in rows] == [
        "out of memory, graded on the work recorded before the run ended",
        "out of memory",
    ]


# --- the guard's checkpoint (capture.py) with stand-ins for Keras ------------------------------------


class Model:
    def __init__(self):
        self.optimizer = types.SimpleNamespace(iterations=0)


class History:
    pass


class Refs:
    """capture._Refs' interface, without Keras: counts the weights it saves."""

    def __init__(self, out_dir):
        self.Model, self.History = Model, History
        self.out_dir = str(out_dir)
        self.saved = []
        self.to_numpy = lambda value: value
        self.encode = json.JSONEncoder().encode
        self.makedirs, self.join, self.basename, self.replace = os.makedirs, os.path.join, os.path.basename, os.replace
        self.sys, self.StringIO = sys, io.StringIO
        fences = capture._load_internals()  # the kit's Keras and matplotlib fences (Keras is never imported)
        self.keras_internals, self.matplotlib_internals = fences["keras"], fences["matplotlib"]

    def save_weights(self, model, path):
        self.saved.append(path)
        print("saving weights")  # a print the checkpoint must swallow
        Path(path).write_bytes(WEIGHTS)


def compile_record(model):
    evidence = reference_evidence()["compile"]
    evidence["optimizer"] = {k: v for k, v in evidence["optimizer"].items() if k != "iterations"}
    return [model, model.optimizer, evidence, 1]


def plot_history(history, metric):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(history.history[metric], label=f"train_{metric}")
    ax.plot(history.history[f"val_{metric}"], label=f"val_{metric}")
    ax.set_xlabel("Epoch"), ax.set_ylabel(metric), ax.legend()
    plot_history.calls += 1


def test_the_guard_s_checkpoint_writes_what_was_recorded_and_only_when_it_changed(tmp_path, capsys):
    refs, records, namespace = Refs(tmp_path / "evidence"), capture._Records(), {}
    settings = {
        "evidence_dir": "evidence",
        "evidence_file": EVIDENCE_FILE,
        "weights_file": WEIGHTS_FILE,
        "plot_history": PLOT_HISTORY,
    }
    point = capture._Checkpoint(namespace, refs, records, settings)
    out = Path(refs.out_dir)

    def written() -> dict | None:
        """What the checkpoint left, moved out as the runner does; None if it wrote nothing."""
        if not (out / EVIDENCE_FILE).exists():
            return None
        evidence = load_evidence(out)  # valid against the schema
        for name in (EVIDENCE_FILE, WEIGHTS_FILE):
            (out / name).unlink(missing_ok=True)
        assert not list(out.iterdir())  # no temporary file left behind
        return evidence

    point()
    first = written()
    assert first["checkpoint"] is True and first["guard"] is True
    assert all(
        first[p] is None and first["errors"][p] == NOT_RECORDED for p in ("compile", "history", "weights", "plots")
    )
    point()
    assert written() is None  # nothing changed: nothing written

    namespace["model"] = model = Model()
    point()
    assert written() is None  # a model, but nothing recorded of it yet
    records.compiles.append(compile_record(model))
    point()
    compiled = written()
    assert compiled["compile"]["recorded"] is True and compiled["compile"]["optimizer"]["iterations"] == 0
    assert compiled["history"] is None and compiled["weights"] is None and not refs.saved

    history = History()
    history.history, history.epoch = reference_evidence()["history"]["history"], [0]
    model.optimizer.iterations = CONTEXT["training_steps"]
    records.fits.append([model, history, {"epochs": 1, "epochs_run": 1, "steps": CONTEXT["training_steps"]}])
    point()
    fitted = written()
    assert fitted["weights"] == WEIGHTS_FILE and len(refs.saved) == 1 and fitted["history"] is None  # not assigned
    namespace["history"] = history
    point()
    assigned = written()
    assert assigned["history"]["recorded"] and assigned["history"]["is_model_history"]
    assert assigned["weights"] == WEIGHTS_FILE and len(refs.saved) == 1  # the same fit: not saved again
    assert assigned["compile"]["optimizer"]["iterations"] == CONTEXT["training_steps"]

    plot_history.calls = 0
    namespace["plot_history"] = plot_history
    point()
    plotted = written()
    assert plot_history.calls == 3 and set(plotted["plots"]) == set(PLOT_HISTORY)
    assert "plots" not in plotted["errors"] and len(refs.saved) == 1
    point()
    point()
    assert written() is None and plot_history.calls == 3 and len(refs.saved) == 1

    namespace["history"] = "not a History"  # a change it tracks: written, plots not drawn again
    point()
    again = written()
    assert again["history"] is None and again["plots"] == plotted["plots"] and plot_history.calls == 3
    assert capsys.readouterr() == ("", "")  # it never prints


def test_the_guard_s_checkpoint_never_raises(tmp_path, capsys):
    refs, records = Refs(tmp_path / "evidence"), capture._Records()
    refs.makedirs = lambda *args, **kwargs: (_ for _ in ()).throw(PermissionError("read-only"))
    point = capture._Checkpoint(
        {}, refs, records, {"evidence_file": EVIDENCE_FILE, "weights_file": WEIGHTS_FILE, "plot_history": PLOT_HISTORY}
    )
    point()
    point()
    assert not (tmp_path / "evidence").exists() and capsys.readouterr() == ("", "")
    assert sys.stdout is sys.__stdout__ or not isinstance(sys.stdout, io.StringIO)
