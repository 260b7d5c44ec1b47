"""Student content is data, never markup (issue 10): the sanitising policy, without a browser.

The hostile corpus (tests/xss_corpus.py) is put into a notebook as the
kernel would leave it, then through ``autograder.course.sanitize``, and through
nbconvert's HTMLExporter with the course's configuration and the very
templates formgrader and feedback use. A page is live when any element
carries a payload in an attribute (``on*``, ``href``, ``srcdoc``...) or a
``<script>`` carries one; sanitised payloads only appear as text. The
browser tests (tests/integration/browser/test_student_content.py) load the real pages.
"""

from __future__ import annotations

import base64
import copy
import csv
import json
import re

import pytest
import xss_corpus as corpus
from bs4 import BeautifulSoup
from kit_testing import REPO, release_notebook, source_answers
from nbformat.v4 import new_output

LISTENER = "http://127.0.0.1:9"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()


def live_markup(html: str) -> list[str]:
    """Elements of an HTML page that would act on a payload (the static twin of xss_watch.LIVE_MARKUP_JS)."""
    soup = BeautifulSoup(html, "html.parser")
    found = []
    for element in soup.find_all(True):
        for name, value in element.attrs.items():
            value = " ".join(value) if isinstance(value, list) else str(value)
            if name.startswith("on") or name in ("srcdoc", "style") or element.name == "base":
                live = corpus.SENTINEL in value or "/hit/" in value
            else:
                squeezed = re.sub(r"[\x00-\x20]+", "", value).lower()
                live = name in ("href", "src", "action", "formaction", "data", "xlink:href") and squeezed.startswith(
                    ("javascript", "vbscript", "data:text")
                )
            if live:
                found.append(f"{element.name}[{name}]")
        if element.name == "script" and (
            corpus.SENTINEL in element.get_text()
            or element.get("type", "").startswith("application/vnd.jupyter.widget")
        ):
            found.append(f"script {element.get('type', '')}".strip())
    return found


@pytest.fixture(scope="module")
def config():
    from autograder.settings import load_course_config

    return load_course_config(REPO)


@pytest.fixture
def hostile(course):
    """A graded-looking notebook with every payload in place: outputs, Markdown, raw cell, metadata."""
    from autograder.course.autograde import write_reports
    from autograder.model import CheckResult, GradingResult, Status

    nb = corpus.outputs_notebook(release_notebook(course), source_answers(course), LISTENER)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    cells["compile"].outputs = corpus.kernel_outputs(LISTENER)
    cells["plot_history"].outputs = [
        new_output(
            "display_data",
            data={"image/png": PNG, "text/plain": "<Figure>"},
            metadata={"image/png": {"width": 600, "height": 400}},
        )
    ]
    check = CheckResult(
        id="test_labels_and_legend",
        cell="test_plot",
        name="Axis labels and legend",
        score=0,
        points=1,
        passed=False,
        message=f'the x axis is labelled {corpus.label_payloads(LISTENER)["label_xlabel"]!r}; use "Epoch"',
    )
    result = GradingResult(
        status=Status.OK,
        message="",
        sandboxed=True,
        seconds=1.0,
        execute_seconds=1.0,
        check_seconds=0.0,
        peak_rss_mb=1.0,
        executed=None,
        checks=[check],
    )
    write_reports(nb, result)
    return nb


def sanitised(nb, config=None):
    from autograder.course.sanitize import SanitizeStudentContent

    nb = copy.deepcopy(nb)
    SanitizeStudentContent(config=config).preprocess(nb, {})
    return nb


RESOURCES = {
    "base_url": "",
    "nbgrader": {"notebook": "n", "score": 14, "max_score": 20, "late_penalty": 0},
    "assignment_id": "a",
    "notebook_id": "n",
    "submission_id": "s",
    "index": 0,
    "total": 1,
    "student": "st",
    "last_name": "",
    "first_name": "",
    "notebook_path": "x",
}


@pytest.fixture(scope="module")
def exporters(course):
    """The HTMLExporters formgrader and generate_feedback build, as they build them, from the course's config."""
    from nbconvert import HTMLExporter
    from nbgrader.converters import GenerateFeedback
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension

    from autograder.settings import load_course_config

    formgrader = FormgradeExtension()
    formgrader.initialize([], root=str(course))  # as the server extension does, from the course root
    config = load_course_config(course)
    feedback = GenerateFeedback(coursedir=CourseDirectory(config=config), config=config)
    return {
        "formgrader": HTMLExporter(config=formgrader.config),
        "feedback": feedback.exporter_class(parent=feedback, config=feedback.config),
    }  # as BaseConverter.start


# --- where the sanitiser sits ----------------------------------------------------------------


def test_autograde_writes_a_sanitised_notebook(config):
    from nbgrader.converters import Autograde

    pipeline = list(Autograde(config=config).autograde_preprocessors)
    assert pipeline[:2] == [
        "autograder.nbgrader_plugins.GradeSubmission",
        "autograder.nbgrader_plugins.SanitizeStudentContent",
    ]
    assert pipeline.index("nbgrader.preprocessors.SaveAutoGrades") > 1


def test_formgrader_and_feedback_exporters_get_the_sanitiser(exporters):
    """Which configuration reaches which HTMLExporter: formgrader builds ``HTMLExporter(config=...)`` from
    the nbgrader_config.py of the course root; feedback's exporter is GenerateFeedback's exporter_class."""
    formgrader, feedback = exporters["formgrader"], exporters["feedback"]
    assert formgrader.template_name == "formgrade"
    assert "SanitizeStudentContent" in [type(p).__name__ for p in formgrader._preprocessors]
    assert type(feedback).__name__ == "FeedbackExporter" and feedback.template_name == "feedback"
    assert "SanitizeStudentContent" in [type(p).__name__ for p in feedback._preprocessors]


# --- the policy --------------------------------------------------------------------------------


def test_every_payload_is_neutralised(hostile):
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from autograder.course.sanitize import KEPT_MIMETYPES

    nb = sanitised(hostile)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert set(output.get("data", {})) <= KEPT_MIMETYPES, output
            assert live_markup(output.get("data", {}).get("text/html", "")) == [], output
            markdown = output.get("data", {}).get("text/markdown")
            assert markdown is None or live_markup(markdown2html_mistune(markdown)) == []
            assert set(output.get("metadata", {})) <= {"image/png", "image/jpeg"}, output
        if cell.cell_type == "markdown":
            assert live_markup(markdown2html_mistune(cell.source)) == [], cell.source
            assert set(cell.get("attachments", {})) == set(), cell.get("attachments")
        if cell.cell_type == "raw":  # nbconvert puts a raw cell into the page as HTML
            assert live_markup(cell.source) == [], cell.source
        assert set(cell.metadata) <= {"nbgrader", "deletable", "editable"}, cell.metadata
    assert "widgets" not in nb.metadata


def test_graders_still_see_what_the_student_tried(hostile):
    nb = sanitised(hostile)
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c for c in nb.cells}
    answer = cells["analysis"].source
    assert corpus.markdown_answer(LISTENER) in answer  # shown whole, as text (a fenced block)
    shown = [o for o in cells["compile"].outputs if "text/html" in o.get("data", {})]
    text = BeautifulSoup("".join(o.data["text/html"] for o in shown), "html.parser").get_text()
    assert "<script>" in text and "<iframe srcdoc=" in text and "onerror=" in text
    removed = [o for o in cells["compile"].outputs if o.get("data", {}).get("text/plain") == "an SVG"]
    assert removed, "an output whose rich form is dropped keeps its plain text"


def test_what_graders_need_is_kept_as_it_was(hostile):
    nb = sanitised(hostile)
    for before, after in zip(hostile.cells, nb.cells):
        grade_id = before.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in ("test_compile", "test_fit", "test_plot", "plot_history"):
            assert after.outputs == before.outputs, grade_id  # kit reports, score line, PNG figures
        if before.cell_type == "code":
            assert after.source == before.source
            assert [o for o in after.outputs if o.output_type in ("stream", "error")] == [
                o for o in before.outputs if o.output_type in ("stream", "error")
            ]
        if before.cell_type == "markdown" and "<" not in before.source and "javascript" not in before.source:
            assert after.source == before.source, grade_id


def test_ordinary_markdown_keeps_every_byte(course):
    from autograder.course.sanitize import safe_markdown

    for text in (
        corpus.ORDINARY_ANSWER,
        *[c.source for c in release_notebook(course).cells if c.cell_type == "markdown"],
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n> quoted\n\n1. one\n2. [two](https://keras.io)\n\n$$x^2$$\n",
    ):
        assert safe_markdown(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "<b>bold</b>",
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "<javascript:alert(1)>",
        "![x](attachment:missing.png)",
        "```mermaid\n<img src=x onerror=alert(1)>\n```",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x](vbscript:msgbox)",
    ],
)
def test_markdown_with_markup_or_bad_links_is_shown_as_text(text):
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    from autograder.course.sanitize import safe_markdown

    shown = safe_markdown(text)
    assert shown != text and text in shown
    html = markdown2html_mistune(shown)
    soup = BeautifulSoup(html, "html.parser")
    assert not soup.find_all(["script", "img", "a", "b", "iframe", "svg"]), html
    assert safe_markdown(shown) == shown  # idempotent


def test_markdown_the_parser_chokes_on_is_shown_as_text(monkeypatch):
    import autograder.course.sanitize as sanitize

    class Choking:
        def __init__(self, renderer):
            pass

        def __call__(self, source):
            raise RecursionError("nested too deep")

    monkeypatch.setattr(sanitize, "MarkdownWithMath", Choking)
    assert sanitize.markdown_problems("> > > x") == ["unparsable (RecursionError)"]
    assert sanitize.safe_markdown("> > > x").endswith("```text\n> > > x\n```\n")


def test_sanitising_twice_changes_nothing(hostile):
    once = sanitised(hostile)
    assert sanitised(once) == once


def test_the_kits_report_html_passes_unchanged():
    from autograder.course.sanitize import clean_html

    line = "<b>14 / 20</b> points from the grader's checks"
    assert clean_html(line) == line


# --- pages rendered by nbconvert with the course configuration --------------------------------


@pytest.mark.parametrize("page", ["formgrader", "feedback"])
def test_rendered_pages_carry_no_live_markup_even_from_an_unsanitised_notebook(hostile, exporters, page):
    nb = copy.deepcopy(hostile)
    for cell in nb.cells:  # what nbgrader's GetGrades adds before the feedback page renders
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["score"] = meta["points"]
    html, _ = exporters[page].from_notebook_node(nb, resources=copy.deepcopy(RESOURCES))
    assert live_markup(html) == []
    soup = BeautifulSoup(html, "html.parser")
    assert len(soup.select(".output_png img")) == 1
    assert "Grader checks: " in soup.get_text()
    if page == "feedback":
        meta = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})
        assert meta is not None and "default-src 'none'" in meta["content"]
        assert meta.find_parent("head") is not None and not soup.find("script", src=False, type=False)


# --- exports and the command line ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, shown",
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("alice", "alice"),
        ("12.5", "12.5"),
        ("-1.5", "-1.5"),
        ("", ""),
    ],
)
def test_csv_cells_cannot_start_a_formula(value, shown):
    from autograder.course.sanitize import csv_cell

    assert csv_cell(value) == shown


def test_grades_csv_quotes_a_hostile_roster_name(tmp_path):
    from nbgrader.api import Gradebook

    from autograder.course.exports import write_nbgrader_csv

    db = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(db, "c") as gb:
        gb.add_assignment("a")
        gb.add_student("s1", first_name="=cmd|' /C calc'!A0", last_name="@SUM(1+1)", email="+x@y")
    with open(write_nbgrader_csv(db, "c", tmp_path / "grades.csv", "a"), newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["first_name"] == "'=cmd|' /C calc'!A0" and row["last_name"] == "'@SUM(1+1)" and row["email"] == "'+x@y"
    assert float(row["score"]) == 0.0


def test_checks_csv_cells_cannot_start_a_formula(tmp_path):
    from autograder.course.exports import write_checks_csv
    from autograder.model import Summary

    summaries = {
        "=1+1": Summary.from_dict(
            {
                "status": "error",
                "message": "-bad",
                "score": 1.0,
                "max_score": 2.0,
                "checks": [{"id": "-c", "cell": "c", "name": "n", "points": 2, "score": 1.0, "passed": False}],
            }
        )
    }
    with open(write_checks_csv(summaries, tmp_path / "checks.csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][:2] == ["'=1+1", "error"] and rows[1][2:] == ["1", "1", "2", "0", "1"]


def test_gradescope_output_is_plain_text():
    from autograder.course.exports import gradescope_results
    from autograder.model import Summary

    summary = Summary.from_dict(
        {
            "status": "ok",
            "score": 0.0,
            "seconds": 1.0,
            "checks": [
                {
                    "id": "t",
                    "cell": "c",
                    "name": "<b>n</b>",
                    "points": 1,
                    "score": 0,
                    "passed": False,
                    "message": "<img src=x onerror=alert(1)>",
                }
            ],
        }
    )
    results = gradescope_results(summary, set(), "visible")
    assert results["output_format"] == "text" and results["test_output_format"] == "text"
    assert results["test_name_format"] == "text"
    assert all(t["output_format"] == "text" for t in results["tests"])
    json.dumps(results)


def test_console_tables_print_student_text_literally():
    from rich.console import Console

    from autograder.cli import grades_table
    from autograder.course.gradebook import Row
    from autograder.model import Status

    name = "[/red]pwn[link=javascript:alert(1)]x[/link]"
    row = Row(name, Status.GRADED, 1.0, 2.0, run_status=Status.ERROR, message=f"{name} broke", notes=[f"note {name}"])
    console = Console(record=True, width=300, color_system=None)
    console.print(grades_table([row], "t"))
    assert name in console.export_text()


@pytest.mark.parametrize(
    "file_name", ['<img src=x onerror="alert(1)">.ipynb', "[red]x[link=javascript:1].ipynb", "a\"b'c.ipynb"]
)
def test_lms_file_names_lose_their_markup_characters(file_name):
    from autograder.course.intake import LmsCollector

    collector = LmsCollector(lms="canvas", notebook="spam_transformer")
    info = collector.collect(f"/x/downloaded/a/extracted/doe_1001_7_{file_name}")
    assert info["student_id"] == "1001"
    assert not set(info["file_id"]) & set("<>\"'[]") and info["file_id"].endswith(".ipynb"), info


def test_lms_ids_with_markup_are_not_collected():
    from autograder.course.intake import LmsCollector

    collector = LmsCollector(
        lms="custom", notebook="spam_transformer", named_regexp=r".*/(?P<student_id>[^/]+)__(?P<file_id>[^/]+)$"
    )
    assert collector.collect("/x/extracted/<b>bob</b>__spam_transformer.ipynb") is None
    assert collector.collect("/x/extracted/bob.smith__spam_transformer.ipynb")["student_id"] == "bob.smith"
