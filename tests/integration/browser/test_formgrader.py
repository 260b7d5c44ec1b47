"""The instructor's side in a real browser: nbgrader's formgrader in JupyterLab
shows the kit's per-check reports of autograded submissions and takes the
manual grade of the written answer."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("playwright")

import lab_ui  # noqa: E402
import nbformat  # noqa: E402
from kit_testing import ASSIGNMENT, fill, make_course, nbgrader, release_notebook, source_answers, submit  # noqa: E402
from lab_server import lab_server  # noqa: E402
from nbgrader.api import Gradebook  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

pytestmark = pytest.mark.browser

TEST_CELLS = ("test_compile", "test_fit", "test_plot")


@pytest.fixture(scope="module")
def graded_course(tmp_path_factory):
    """A course with two autograded submissions: alice (the reference
    solution) and bob (the same with SGD instead of Adam)."""
    root = make_course(tmp_path_factory.mktemp("formgrader-course"))
    answers = source_answers(root)
    sgd = answers["compile"].replace("keras.optimizers.Adam(", "keras.optimizers.SGD(")
    assert sgd != answers["compile"], "the reference compile cell no longer uses keras.optimizers.Adam("
    released = release_notebook(root)
    submit(root, "alice", fill(released, answers))
    submit(root, "bob", fill(released, {**answers, "compile": sgd}))
    nbgrader(root, "autograde", ASSIGNMENT, "--force")
    return root


def gradebook(root):
    return Gradebook(f"sqlite:///{root / 'gradebook.db'}")


def grades(root, student: str) -> dict[str, dict]:
    with gradebook(root) as gb:
        notebook = gb.find_submission(ASSIGNMENT, student).notebooks[0]
        return {
            g.name: {"score": g.score, "auto": g.auto_score, "manual": g.manual_score, "max": g.max_score}
            for g in notebook.grades
        }


def total(root, student: str) -> float:
    with gradebook(root) as gb:
        return gb.find_submission(ASSIGNMENT, student).score


def max_total(root) -> float:
    with gradebook(root) as gb:
        return gb.find_assignment(ASSIGNMENT).max_score


def reports(root, student: str) -> dict[str, str]:
    """The text the kit wrote into each autograded test cell (stdout stream)."""
    nb = nbformat.read(root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    found = {}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in TEST_CELLS:
            found[grade_id] = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    return found


def score_text(score: float, out_of: float) -> str:
    return f"{score:g} / {out_of:g}"  # as formgrader's tables print scores


def test_formgrader_shows_check_reports_and_records_a_manual_grade(graded_course, page, tmp_path):
    root = graded_course
    out_of = max_total(root)
    before = {student: total(root, student) for student in ("alice", "bob")}
    alice, bob = grades(root, "alice"), grades(root, "bob")
    # The kit graded what the browser will show: full code marks for the
    # reference, a lost optimizer check for SGD, the written answer not yet.
    assert all(alice[cell]["score"] == alice[cell]["max"] for cell in TEST_CELLS), alice
    assert bob["test_compile"]["score"] < bob["test_compile"]["max"], bob
    assert alice["analysis"]["manual"] is None and bob["analysis"]["manual"] is None

    with lab_server(root, tmp_path / "lab") as server:
        lab_ui.open_lab(page, server)
        formgrader = lab_ui.open_formgrader(page)

        # Manage Assignments: the assignment and its two submissions.
        row = formgrader.locator("tr").filter(has=formgrader.get_by_role("link", name=ASSIGNMENT, exact=True))
        submissions = row.get_by_role("link", name="2", exact=True)
        expect(submissions).to_be_visible()
        submissions.click()

        # Manage Submissions: each student's autograded total.
        expect(formgrader.get_by_role("heading", name="Manage Submissions")).to_be_visible()
        for student, score in before.items():
            student_row = formgrader.locator("tr").filter(has_text=student)
            expect(student_row).to_contain_text(score_text(score, out_of))
            expect(student_row.locator(".label")).to_have_text("needs manual grading")

        # Manual Grading > assignment > notebook > bob's submission.
        # (Each step waits for its page's table: the assignment and the
        # notebook share a name, and a click must not land on the old page.)
        table_link = formgrader.locator("table").get_by_role("link", name=ASSIGNMENT, exact=True)
        formgrader.get_by_role("link", name="Manual Grading").click()
        expect(formgrader.locator("th", has_text="Assignment ID")).to_be_visible()
        table_link.click()
        expect(formgrader.locator("th", has_text="Notebook ID")).to_be_visible()
        table_link.click()
        # rows arrive after the page (names hidden); the names toggle needs them
        expect(formgrader.get_by_role("link", name=re.compile(r"^Submission #\d+$"))).to_have_count(len(before))
        formgrader.get_by_role("button", name="Show All Names").click()
        formgrader.get_by_role("link", name="bob", exact=True).click()  # "Submission #n" until names are shown
        expect(formgrader.locator(".breadcrumb")).to_contain_text("Submission #")
        expect(formgrader.get_by_text("bob", exact=True)).to_be_attached()

        # Each test cell shows the kit's report, as written, and its score.
        for cell_id, report in reports(root, "bob").items():
            cell = formgrader.locator(".cell").filter(has=formgrader.locator(f"input#{cell_id}"))
            assert report.startswith("Grader checks: "), report
            assert "[PASS]" in report or "[FAIL]" in report, report
            expect(cell.locator(".output_stdout pre")).to_have_text(report.rstrip("\n"), use_inner_text=True)
            # formgrader shows the autograded score as the score field's placeholder
            expect(cell.locator(f"input#{cell_id}")).to_have_attribute("placeholder", f"{bob[cell_id]['auto']:g}")
        compile_report = formgrader.locator(".cell").filter(has=formgrader.locator("input#test_compile"))
        expect(compile_report.locator(".output_stdout")).to_contain_text("[FAIL]")
        expect(compile_report.locator(".output_stdout")).to_contain_text(
            re.compile(r"\[FAIL\].*(optimi[sz]er|adam)", re.IGNORECASE)
        )

        compile_report.scroll_into_view_if_needed()
        lab_ui.save_screenshot(page, "formgrader-submission")
        fit_report = formgrader.locator(".cell").filter(has=formgrader.locator("input#test_fit"))
        lab_ui.save_screenshot(page, "formgrader-test_fit-cell", target=fit_report)

        # The written answer: type 4 points, leave the field; formgrader saves it.
        analysis = formgrader.locator("input#analysis")
        with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT") as saved:
            analysis.fill("4")
            analysis.press("Tab")
        assert saved.value.ok, saved.value.status

        # The gradebook has it, and formgrader's submission list shows the new total.
        assert grades(root, "bob")["analysis"]["manual"] == 4
        assert total(root, "bob") == before["bob"] + 4
        assert total(root, "alice") == before["alice"]
        formgrader.get_by_role("link", name="Manual Grading").first.click()  # breadcrumb
        expect(formgrader.locator("th", has_text="Assignment ID")).to_be_visible()
        formgrader.get_by_role("link", name="Manage Assignments").click()
        formgrader.locator("tr").filter(has=formgrader.get_by_role("link", name=ASSIGNMENT, exact=True)).get_by_role(
            "link", name="2", exact=True
        ).click()
        bob_row = formgrader.locator("tr").filter(has_text="bob")
        expect(bob_row).to_contain_text(score_text(before["bob"] + 4, out_of))
        expect(bob_row.locator(".label")).to_have_text("graded")  # was "needs manual grading"
        lab_ui.save_screenshot(page, "formgrader-submissions-after-manual-grade")
