"""Fixtures and the result collector of the hidden checks.

The grader runs ``pytest autograder/grading/checks`` outside the sandbox (in
its warm check process, ``check_process.py``) with ``KIT_CHECK_CONTEXT`` naming a JSON
file that says where the submission's evidence is and holds the grader's own
figures (``regraded`` AUCs, ``training_steps``). Every check carries ``@pytest.mark.check(cell, points, name)``;
the collector writes one record per check (no source, no traceback) to the
file named by ``KIT_CHECK_RESULTS``. A record's ``message`` is shown to the
student; figures a check measured (``record_property``) go to ``values`` and
an unexpected grader error's text to ``detail``, both for the instructor only.

When the evidence is the checkpoint of a run that ended early (``partial``
in the context, see ``engine.evidence_to_check``), a check that fails while a
part of the evidence it reads was not recorded before the stop gets a message
naming the stop instead (``evidence.not_checked``). The parts a check reads:
its test cell's (``NEEDS``), or its marker's ``needs=(...)``.
"""

import json
import os
from pathlib import Path

import pytest

_RESULTS = []
_CHECKPOINT = {}  # the checkpoint evidence of this session, read once (partial runs only)

# The part of the evidence the checks of each test cell read (a check's marker may say ``needs=(...)``).
NEEDS = {"test_compile": ("compile",), "test_fit": ("history",), "test_plot": ("plots",)}


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "check(cell, points, name, needs=None): a graded check of a test cell "
        "(needs: the evidence parts it reads, if not its cell's)",
    )


def pytest_sessionstart(session):
    _CHECKPOINT.clear()  # one submission per session, even where this module outlives one


def pytest_collection_modifyitems(config, items):
    """``only`` in the context names the one check to run (``spamkit grade --check ID``)."""
    only = _context().get("only")
    if only:
        config.hook.pytest_deselected(items=[item for item in items if item.name != only])
        items[:] = [item for item in items if item.name == only]


def _context():
    return json.loads(Path(os.environ["KIT_CHECK_CONTEXT"]).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def context():
    return _context()


@pytest.fixture(scope="session")
def evidence(context):
    """The evidence captured in the student's kernel, validated by shape."""
    from autograder.grading.evidence import load_evidence

    return load_evidence(Path(context["evidence_dir"]))


@pytest.fixture(scope="session")
def regraded(context, evidence):
    """The grader's own evaluation of the student's trained weights (``check_process.regrade``)."""
    from autograder.errors import EvidenceMissing

    figures = context["regraded"]
    if figures.get("error") == "EvidenceMissing":
        raise EvidenceMissing(figures["message"])
    if figures.get("error") == "AssertionError":
        raise AssertionError(figures["message"])
    if "error" in figures:
        raise RuntimeError(f"{figures['error']}: {figures['message']}")
    return figures


def _stopped_before(marker) -> str | None:
    """The part a check reads that the run ended before recording (partial runs only), or None."""
    context = _context()
    if not context.get("partial"):
        return None
    from autograder.errors import EvidenceMissing
    from autograder.grading.evidence import load_evidence, not_recorded

    if "evidence" not in _CHECKPOINT:
        try:
            _CHECKPOINT["evidence"] = load_evidence(Path(context["evidence_dir"]))
        except EvidenceMissing:
            _CHECKPOINT["evidence"] = None
    evidence = _CHECKPOINT["evidence"]
    if evidence is None:
        return None
    needs = marker.kwargs.get("needs") or NEEDS.get(marker.kwargs["cell"], ())
    return next((part for part in needs if not_recorded(evidence, part)), None)


def _message(exc) -> tuple[str, str]:
    """What the student reads, and the grader-side detail (instructor only)."""
    from autograder.errors import EvidenceMissing

    text = str(exc).split("\nassert ")[0].strip()
    if isinstance(exc, (AssertionError, EvidenceMissing)):
        return text or "the check failed", ""
    return (
        f"the grader could not complete this check ({type(exc).__name__}); your instructor has the details",
        f"{type(exc).__name__}: {text}",
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("check")
    if marker is None or not (report.when == "call" or report.failed):
        return
    if any(r["id"] == item.name for r in _RESULTS):
        return
    message, detail = "", ""
    if call.excinfo is not None:
        message, detail = _message(call.excinfo.value)
    if not report.passed:
        part = _stopped_before(marker)
        if part is not None:
            from autograder.grading.evidence import not_checked

            context = _context()
            message = not_checked(context.get("run_status", ""), context.get("run_message", ""), part)
    _RESULTS.append(
        {
            "id": item.name,
            "cell": marker.kwargs["cell"],
            "name": marker.kwargs["name"],
            "points": float(marker.kwargs["points"]),
            "passed": report.passed,
            "score": float(marker.kwargs["points"]) if report.passed else 0.0,
            "message": message[:1000],
            "values": {str(k): v for k, v in item.user_properties},
            "detail": detail[:2000],
        }
    )


def pytest_sessionfinish(session, exitstatus):
    target = os.environ.get("KIT_CHECK_RESULTS")
    if target:
        Path(target).write_text(json.dumps(_RESULTS, indent=1), encoding="utf-8")
