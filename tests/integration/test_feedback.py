"""What students get back: feedback HTML and the public self-checks of the release.

Feedback (``nbgrader generate_feedback``) must show every check's name and
message, and nothing of the grader: no hidden test code (a canary hidden
test is added to the course's source notebook to prove it is stripped), no
line of the kit's grading code, no hidden test messages, no grader paths.
The release's test cells are public self-checks: nbgrader's Validator must
pass a correct notebook and fail the plain release.
"""

from __future__ import annotations

import base64
import html
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup
from corpus import by_name
from kit_testing import (
    ASSIGNMENT,
    DATA_DIR,
    REPO,
    data_env,
    fill,
    make_course,
    nbgrader,
    release_notebook,
    source_answers,
    submit,
    summary,
)

STUDENTS = ("reference", "no_auc", "fabricated_val_auc", "plot_wrong_labels", "fit_exception")
CANARY = "kit_hidden_canary_5d1e"
HIDDEN_BLOCK = (
    f"\n### BEGIN HIDDEN TESTS\n{CANARY} = 'hidden tests must never reach students'\n"
    f"assert {CANARY}\n### END HIDDEN TESTS\n"
)
NBGRADER_DEFAULT_FEEDBACK = "['nbgrader.preprocessors.GetGrades','nbconvert.preprocessors.CSSHTMLHeaderPreprocessor']"
GRADER_PATHS = (".kit/", "autograder", "/opt/kit", "spamkit-job", "check_context", "evidence.json")


def _add_canary(root: Path) -> None:
    path = root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_fit")
    cell.source += HIDDEN_BLOCK
    nbformat.write(nb, path)
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")


@pytest.fixture(scope="module")
def feedback_course(tmp_path_factory):
    root = make_course(tmp_path_factory.mktemp("feedback"))
    _add_canary(root)
    for name in STUDENTS:
        submit(root, name, by_name(name).notebook(root))
    nbgrader(root, "autograde", ASSIGNMENT, "--force")
    return root


def _feedback(root: Path, student: str) -> str:
    return (root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text(encoding="utf-8")


def _text(page: str) -> str:
    return BeautifulSoup(page, "html.parser").get_text()


def _squash(text: str) -> str:
    return " ".join(text.split())


def _released_text(root: Path) -> str:
    """Everything students legitimately see: the released notebook's cells and spam_data.py."""
    sources = [cell.source for cell in release_notebook(root).cells]
    return "\n".join([*sources, (root / "release" / ASSIGNMENT / "spam_data.py").read_text()])


def test_course_config_feeds_generate_feedback_through_a_real_trait():
    from nbgrader.converters import GenerateFeedback

    from autograder.settings import load_course_config

    assert "preprocessors" in GenerateFeedback.class_trait_names(config=True)
    config = load_course_config(REPO)
    converter = GenerateFeedback(config=config)
    assert converter.preprocessors[0] == "autograder.nbgrader_plugins.HideGraderInternals"


def test_hidden_test_code_is_graded_but_never_shown(feedback_course):
    root = feedback_course
    assert CANARY not in (root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    autograded = (root / "autograded" / "reference" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert CANARY in autograded, "autograde restores hidden tests: the canary must be in the graded notebook"
    # Control: nbgrader's own feedback pipeline shows hidden tests (issues #917, #1363) ...
    nbgrader(
        root,
        "generate_feedback",
        ASSIGNMENT,
        "--force",
        f"--GenerateFeedback.preprocessors={NBGRADER_DEFAULT_FEEDBACK}",
    )
    assert CANARY in _feedback(root, "reference"), "control failed: the canary is not in plain nbgrader feedback"
    # ... the course's pipeline, read from course_config.py, does not.
    nbgrader(root, "generate_feedback", ASSIGNMENT, "--force")
    for student in STUDENTS:
        page = _feedback(root, student)
        assert CANARY not in page and "BEGIN HIDDEN TESTS" not in page, student


@pytest.fixture(scope="module")
def feedback_pages(feedback_course):
    nbgrader(feedback_course, "generate_feedback", ASSIGNMENT, "--force")
    return {student: _feedback(feedback_course, student) for student in STUDENTS}


@pytest.mark.parametrize("student", STUDENTS)
def test_feedback_shows_each_check_name_and_message(feedback_course, feedback_pages, student):
    text = _squash(_text(feedback_pages[student]))  # reports may wrap long messages
    report = summary(feedback_course, student)
    assert f"Grader checks: {sum(c['score'] for c in report['checks'] if c['cell'] == 'test_fit'):g} / 9 points" in text
    for check in report["checks"]:
        assert _squash(check["name"]) in text, check["id"]
        if not check["passed"]:
            assert _squash(check["message"]) in text, check["id"]
    assert any(not c["passed"] for c in report["checks"]) == (student != "reference")


def test_feedback_holds_no_grader_code(feedback_course, feedback_pages):
    visible = _released_text(feedback_course)
    kit_code = sorted((REPO / "autograder").rglob("*.py"))
    secret = {line.strip() for path in kit_code for line in path.read_text().splitlines()}
    secret = {line for line in secret if len(line) > 25 and line not in visible}
    assert len(secret) > 200  # the kit's code is really being compared
    for student, page in feedback_pages.items():
        text = _text(page)
        leaked = [line for line in secret if line in text or html.escape(line) in page]
        assert not leaked, f"{student}: grader code in feedback: {leaked[:5]}"


def test_training_curves_are_graded_and_shown(feedback_course, feedback_pages):
    """The reference's three figures stay in the autograded notebook and reach its feedback as PNGs."""
    nb = nbformat.read(feedback_course / "autograded" / "reference" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    plot = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "plot_history")
    assert sum("image/png" in o.get("data", {}) for o in plot.outputs) == 3
    images = [img["src"] for img in BeautifulSoup(feedback_pages["reference"], "html.parser").find_all("img")]
    pngs = [src for src in images if src.startswith("data:image/png;base64,")]
    assert len(pngs) == 3, images[:5]
    assert all(base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n" for src in pngs)


def test_feedback_holds_no_grader_paths(feedback_pages):
    for student, page in feedback_pages.items():
        for needle in GRADER_PATHS:
            assert needle not in page, f"{student}: {needle!r} in feedback"


def test_feedback_holds_no_hidden_test_messages(feedback_course, feedback_pages):
    from autograder.settings import Lab, load_course_config

    sys.path.insert(0, str(feedback_course / "source" / ASSIGNMENT))
    import spam_data

    lab = Lab(config=load_course_config(feedback_course))
    splits = spam_data.load_splits(lab.dataset, DATA_DIR, lab.split_seed)
    public_text = "\n".join([*splits["train"][0], *splits["val"][0]])
    hidden = [m for m in splits["test"][0] if len(m) >= 30 and m not in public_text]
    assert len(hidden) >= 20
    for student, page in feedback_pages.items():
        text = _text(page)
        shown = [m for m in hidden if m in text or html.escape(m) in page]
        assert not shown, f"{student}: hidden test messages in feedback: {shown[:3]}"


# --- the public self-checks -----------------------------------------------------------------


def _validate(folder: Path, nb: nbformat.NotebookNode, monkeypatch) -> dict:
    from nbgrader.validator import Validator
    from traitlets.config import Config

    for name, value in data_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    path = folder / f"{ASSIGNMENT}.ipynb"
    nbformat.write(nb, path)
    config = Config()
    config.Execute.timeout = 600
    return Validator(config=config).validate(str(path))


def test_public_self_checks_pass_a_correct_notebook_and_fail_the_stubs(course, tmp_path, monkeypatch):
    for name in ("correct", "stubs"):
        shutil.copytree(course / "release" / ASSIGNMENT, tmp_path / name)
    correct = _validate(tmp_path / "correct", fill(release_notebook(course), source_answers(course)), monkeypatch)
    assert correct == {}, f"a correct notebook must validate cleanly: {list(correct)}"
    stubs = _validate(tmp_path / "stubs", release_notebook(course), monkeypatch)
    assert set(stubs) == {"failed"}
    failed_sources = "\n".join(cell["source"] for cell in stubs["failed"])
    for marker in ("Self-check for Exercise 1", "Self-check for Exercise 2", "Self-check for Exercise 3"):
        assert marker in failed_sources, f"{marker}: the stub release must fail this public test"
