"""Nothing a student writes runs in anyone's browser (issue 10).

The hostile corpus (tests/xss_corpus.py) comes in as a Canvas download
(``spamkit collect --zip``), is graded once by ``spamkit grade`` (Dask,
the sandbox, nbgrader autograde with the kit's pipeline), then
``spamkit feedback``, ``report`` and ``export`` run. Each page a person
opens is then loaded in Chromium: formgrader's submission page (served by
the instructor's own Jupyter server), the feedback HTML, the class report,
and the autograded notebook in JupyterLab, trusted or not. Sentinels
(tests/integration/browser/xss_watch.py) must stay silent on every page, while the
training curves (PNG) and the kit's check reports still show.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request

import pytest

pytest.importorskip("playwright")

import lab_ui  # noqa: E402
import nbformat  # noqa: E402
import xss_corpus as corpus  # noqa: E402
from kit_testing import ASSIGNMENT, course_env, make_course, release_notebook, source_answers  # noqa: E402
from lab_server import lab_server  # noqa: E402
from nbformat.sign import NotebookNotary  # noqa: E402
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402
from playwright.sync_api import expect  # noqa: E402
from xss_watch import Listener, Watch, assert_clean  # noqa: E402

pytestmark = pytest.mark.browser

NOTEBOOK = f"{ASSIGNMENT}.ipynb"
TEST_CELLS = ("test_compile", "test_fit", "test_plot")


def spamkit(root, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args, "--course-dir", str(root), "--no-progress"],
        cwd=root,
        env=course_env({"COLUMNS": "400"}),
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="module")
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture(scope="module")
def hostile_course(tmp_path_factory, listener):
    """The corpus, collected from a Canvas zip and graded once; the runs of each spamkit command."""
    root = make_course(tmp_path_factory.mktemp("hostile-course"))
    released, answers = release_notebook(root), source_answers(root)
    notebooks = {
        corpus.XSS_OUTPUTS: corpus.outputs_notebook(released, answers, listener.url),
        corpus.XSS_LABELS: corpus.labels_notebook(released, answers, listener.url),
    }
    download = root.parent / "canvas-download.zip"
    download.write_bytes(corpus.canvas_zip(notebooks, corpus.odd_file_names(listener.url), released))
    runs = {"collect": spamkit(root, "collect", "--zip", str(download), "--lms", "canvas")}
    runs["grade"] = spamkit(root, "grade", "--workers", "1")
    for command in ("feedback", "report", "export"):
        runs[command] = spamkit(root, command)
    return root, runs


@pytest.fixture(scope="module")
def lab(hostile_course, tmp_path_factory):
    root, _ = hostile_course
    with lab_server(root, tmp_path_factory.mktemp("lab-state")) as server:
        yield server


def autograded(root, student):
    return root / "autograded" / student / ASSIGNMENT / NOTEBOOK


def submission_id(root, student) -> str:
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        return gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).id


def watched(page, listener, api_forbidden: bool = True) -> Watch:
    return Watch(listener, api_forbidden).attach(page)


# --- intake and the command line -------------------------------------------------------------


def test_every_spamkit_command_takes_hostile_names_and_labels_as_text(hostile_course):
    root, runs = hostile_course
    for command, run in runs.items():
        assert run.returncode == 0, (
            f"spamkit {command} exited {run.returncode}:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        )
    graded = {p.parent.parent.name for p in (root / "autograded").glob(f"*/{ASSIGNMENT}/{NOTEBOOK}")}
    assert graded == set(corpus.GRADED)
    # the LMS file names reach the course folders without markup characters
    names = [p.name for p in (root / "submitted").rglob("*.ipynb")]
    assert len(names) == 5, names
    assert not [n for n in names if set(n) & set("<>\"'[]")], names
    # intake tells the instructor what came in, names as they are on disk (not eaten as console markup)
    assert "wrong file name" in runs["collect"].stdout and corpus.XSS_NAMES in runs["collect"].stdout
    odd = [n for n in names if n != NOTEBOOK]
    assert len(odd) == 3 and all(n in runs["collect"].stdout for n in odd), (odd, runs["collect"].stdout)


# --- formgrader ------------------------------------------------------------------------------


def formgrader_cell(page, grade_id: str):
    """A graded cell of formgrader's submission page, by its score field or comment box."""
    return page.locator(".cell").filter(has=page.locator(f"input#{grade_id}, textarea#{grade_id}-comment"))


def open_submission(page, lab, root, student):
    page.goto(lab.link(f"formgrader/submissions/{submission_id(root, student)}/"))
    expect(page.locator(".cell").first).to_be_attached(timeout=60_000)
    page.wait_for_load_state("load")


def screenshot_between(page, first, last, name: str) -> None:
    """One PNG under tests/integration/browser/screenshots/ from the top of `first` to the bottom of `last`."""
    top = first.evaluate("el => el.getBoundingClientRect().top + window.scrollY")
    bottom = last.evaluate("el => el.getBoundingClientRect().bottom + window.scrollY")
    lab_ui.SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(
        path=str(lab_ui.SCREENSHOTS / f"{name}.png"),
        full_page=True,
        clip={"x": 0, "y": top, "width": page.viewport_size["width"], "height": bottom - top},
    )


def expect_curves_and_reports(cell_of) -> None:
    images = cell_of("plot_history").locator(".output_png img")
    expect(images).to_have_count(3)
    for i in range(3):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 100"), f"training curve {i} not shown"
    for grade_id in TEST_CELLS:
        expect(cell_of(grade_id).locator(".output_stdout pre")).to_contain_text("Grader checks: ")
        expect(cell_of(grade_id)).to_contain_text("points from the grader's checks")


@pytest.mark.parametrize("student", corpus.GRADED)
def test_formgrader_submission_page_runs_no_student_content(hostile_course, lab, listener, page, student):
    root, _ = hostile_course
    watch = watched(page, listener)
    open_submission(page, lab, root, student)
    watch.click_links(page)
    findings = watch.findings(page)
    assert_clean(findings, f"formgrader's page of {student}")

    expect_curves_and_reports(lambda grade_id: formgrader_cell(page, grade_id))
    answer = formgrader_cell(page, "analysis")
    if student == corpus.XSS_LABELS:
        # checks that quote the student's labels show them as text
        expect(formgrader_cell(page, "test_plot").locator(".output_stdout pre")).to_contain_text(
            "the x axis is labelled '<img src=x onerror="
        )
        expect(formgrader_cell(page, "test_compile").locator(".output_stdout pre")).to_contain_text(
            "the optimizer is <img src=x onerror="
        )
        # an ordinary written answer keeps its formatting
        expect(answer.locator(".rendered_html em")).to_have_text("high")
        expect(answer.locator(".rendered_html strong")).to_have_text("one")
        expect(answer.locator(".rendered_html li")).to_have_count(2)
        expect(answer.locator(".rendered_html code")).to_have_count(2)
        expect(answer).to_contain_text("P(s_+ > s_-)")
    else:
        # the grader reads what the student tried, as text
        expect(answer).to_contain_text("My analysis: the model *learns* quickly.")
        expect(answer).to_contain_text("<script>")
        shown = formgrader_cell(page, "compile").locator(".output_html").filter(has_text="<iframe srcdoc=")
        expect(shown).to_have_count(1)
        # a Markdown output with HTML is shown as text, under a note that renders as Markdown
        markdown = formgrader_cell(page, "compile").locator(".output_markdown")
        expect(markdown.locator("em")).to_have_count(1)
        expect(markdown).not_to_contain_text("<p>")
        screenshot_between(
            page,
            formgrader_cell(page, "plot_history"),
            formgrader_cell(page, "test_plot"),
            "formgrader-sanitised-submission",
        )  # the curves and their report
        screenshot_between(
            page,
            formgrader_cell(page, "compile"),
            formgrader_cell(page, "test_compile"),
            "formgrader-sanitised-outputs",
        )  # hostile outputs shown as text
        screenshot_between(
            page, formgrader_cell(page, "analysis"), formgrader_cell(page, "analysis"), "formgrader-sanitised-answer"
        )


def test_formgrader_sanitises_a_notebook_the_autograder_did_not(hostile_course, lab, listener, page):
    """Defence in depth: course_config's HTMLExporter settings reach formgrader's exporter, so even an
    autograded notebook written by a plain nbgrader pipeline (here: payloads put back in by hand) is
    rendered without its script."""
    root, _ = hostile_course
    path = autograded(root, corpus.XSS_OUTPUTS)
    original = path.read_bytes()
    nb = nbformat.reads(original.decode(), as_version=4)
    m = lambda name: corpus.mark(name, listener.url)  # noqa: E731
    tampered = new_code_cell(
        "# put back by hand",
        outputs=[
            new_output("display_data", data={"text/html": f'<img src=x onerror="{m("tamper_html")}">'}),
            new_output("display_data", data={"application/javascript": m("tamper_js")}),
            new_output(
                "display_data",
                data={"image/svg+xml": f'<svg xmlns="http://www.w3.org/2000/svg" onload="{m("tamper_svg")}"/>'},
            ),
            new_output("display_data", data={"text/markdown": f'<img src=x onerror="{m("tamper_md_output")}">'}),
            new_output("display_data", data={"application/vnd.jupyter.widget-view+json": corpus.WIDGET_VIEW}),
        ],
    )
    nb.cells += [tampered, new_markdown_cell(f'<img src=x onerror="{m("tamper_md")}">')]
    nb.metadata["widgets"] = corpus.widget_state(listener.url)
    try:
        nbformat.write(nb, path)
        watch = watched(page, listener)
        open_submission(page, lab, root, corpus.XSS_OUTPUTS)
        findings = watch.findings(page)
        assert_clean(findings, "formgrader's page of a notebook the autograder did not sanitise")
        expect(page.locator(".output_png img")).to_have_count(3)
    finally:
        path.write_bytes(original)


# --- feedback and the class report -------------------------------------------------------------


def csp(page) -> str:
    meta = page.locator('meta[http-equiv="Content-Security-Policy"]')
    expect(meta).to_have_count(1)
    return meta.get_attribute("content")


@pytest.mark.parametrize("student", corpus.GRADED)
def test_feedback_page_runs_no_student_content(hostile_course, listener, page, student):
    root, _ = hostile_course
    feedback = root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
    watch = watched(page, listener)
    page.goto(feedback.as_uri())
    watch.click_links(page)
    assert_clean(watch.findings(page), f"the feedback of {student}")
    policy = csp(page)
    assert "script-src" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0], policy
    images = page.locator(".output_png img")
    expect(images).to_have_count(3)
    assert all(images.nth(i).evaluate("img => img.complete && img.naturalWidth > 100") for i in range(3))
    expect(page.locator(".output_stdout pre").filter(has_text="Grader checks: ")).to_have_count(len(TEST_CELLS))


def test_class_report_runs_no_student_content(hostile_course, listener, page):
    root, _ = hostile_course
    watch = watched(page, listener)
    page.goto((root / "exports" / "report.html").as_uri())
    assert_clean(watch.findings(page), "the class report")
    assert "default-src 'none'" in csp(page)
    rows = page.locator("table").first.locator("tr")  # students needing attention
    expect(rows.filter(has_text=corpus.XSS_NAMES).filter(has_text="wrong file name")).to_have_count(1)
    crashed = rows.filter(has_text=corpus.XSS_OUTPUTS).filter(has_text="errors while running")
    expect(crashed).to_contain_text("<img src=x onerror=")  # the exception's class name, as text
    expect(page.locator("figure img")).not_to_have_count(0)


def test_exports_hold_no_markup_a_reader_would_render(hostile_course):
    root, _ = hostile_course
    results = json.loads((root / "exports" / "gradescope" / corpus.XSS_LABELS / "results.json").read_text())
    assert results["output_format"] == "text" and results["test_output_format"] == "text"
    quoting = [t for t in results["tests"] if "<img src=x onerror=" in t["output"]]
    assert quoting, "the label check should quote the student's x label"
    assert all(t.get("output_format", "text") == "text" for t in results["tests"])


# --- the autograded notebook in JupyterLab -----------------------------------------------------


def test_autograded_notebooks_are_not_signed(hostile_course):
    """JupyterLab renders an unsigned notebook's outputs sanitised; nothing in the pipeline signs."""
    root, _ = hostile_course
    notary = NotebookNotary()  # the instructor's own (default data dir), as their JupyterLab checks it
    for student in corpus.GRADED:
        nb = nbformat.read(autograded(root, student), as_version=4)
        assert not notary.check_signature(nb), student
        assert "signature" not in nb.metadata


def open_in_lab(page, server, path: str, cells: int) -> None:
    lab_ui.open_notebook(page, server, path)
    expect(lab_ui.cells(page)).to_have_count(cells)
    expect(page.locator(".jp-OutputArea-output img")).not_to_have_count(0, timeout=60_000)


def test_jupyterlab_runs_no_student_content_trusted_or_not(hostile_course, listener, page, tmp_path):
    """Opened as it is (not trusted), and even after the instructor trusts it."""
    root, _ = hostile_course
    data_dir, state = tmp_path / "jupyter-data", tmp_path / "lab"
    settings = state / "config" / "lab" / "user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))  # render every cell
    path = autograded(root, corpus.XSS_OUTPUTS)
    nb = nbformat.read(path, as_version=4)
    relative = path.relative_to(root).as_posix()
    with lab_server(root, state, env={"JUPYTER_DATA_DIR": str(data_dir)}) as server:
        watch = watched(page, listener, api_forbidden=False)
        open_in_lab(page, server, relative, len(nb.cells))
        watch.click_links(page)
        assert_clean(watch.findings(page), "JupyterLab (notebook not trusted)")

        NotebookNotary(data_dir=str(data_dir)).sign(nb)  # what "Trust Notebook" records
        with urllib.request.urlopen(server.link(f"api/contents/{relative}")) as response:
            served = json.load(response)["content"]
        assert all(c["metadata"].get("trusted") for c in served["cells"] if c["cell_type"] == "code")
        page.goto("about:blank")
        open_in_lab(page, server, relative, len(nb.cells))
        watch.click_links(page)
        assert_clean(watch.findings(page), "JupyterLab (notebook trusted by the instructor)")
    shutil.rmtree(data_dir, ignore_errors=True)
