"""What a user does in JupyterLab 4, as Playwright steps (menus, cells, formgrader)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import FrameLocator, Locator, Page, expect

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
TRACEBACK = "Traceback (most recent call last)"


def save_screenshot(page: Page, name: str, target: Locator | None = None) -> Path:
    """A PNG under tests/browser/screenshots/: the window, or one element of it."""
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    (target or page).screenshot(path=str(path))
    return path


def open_lab(page: Page, server, path: str = "lab") -> None:
    page.goto(server.link(path))
    expect(page.get_by_role("menuitem", name="Nbgrader")).to_be_visible(timeout=60_000)


def menu(page: Page, top: str, item: str) -> None:
    page.get_by_role("menuitem", name=top, exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


# --- notebooks --------------------------------------------------------------


def cells(page: Page) -> Locator:
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")


def outputs(page: Page, index: int) -> Locator:
    return cells(page).nth(index).locator(".jp-OutputArea-output")


def open_notebook(page: Page, server, name: str) -> None:
    """Open a notebook and wait for its own kernel (the status bar may still show another tab's)."""
    open_lab(page, server, f"lab/tree/{name}")
    idle = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator[data-status='idle']")
    expect(idle).to_have_count(1, timeout=60_000)


def take_the_offered_kernel(page: Page) -> None:
    """Answer JupyterLab's "Select Kernel" dialog, whenever it comes, as a user does: Select.

    JupyterLab asks when it cannot settle a notebook's kernel by itself; on a
    busy hub it asked for a notebook whose kernelspec the server has, with
    the notebook's own kernel offered. The dialog blocks every click until
    answered, so Playwright answers it before each action that meets it."""
    dialog = page.locator(".jp-Dialog").filter(has_text="Select Kernel")
    page.add_locator_handler(dialog, lambda found: found.get_by_role("button", name="Select", exact=True).click())


def run_all_until(page: Page, index: int, text: str, timeout: float = 120_000, tries: int = 3) -> Locator:
    """Run > Run All Cells until cell `index` shows `text`; the outputs of that cell.

    Right after a notebook opens in a restored workspace, a Run All can reach
    JupyterLab before the panel's session is wired and run nothing; the
    notebooks run this way are idempotent probes, so a second try is safe."""
    output = outputs(page, index)
    for attempt in range(tries):
        menu(page, "Run", "Run All Cells")
        try:
            expect(output).to_contain_text(text, timeout=timeout / tries)
            return output
        except AssertionError:
            if attempt == tries - 1:
                raise
    return output


def scroll_to(page: Page, index: int) -> None:
    """Bring a cell to the top of the notebook view, for a screenshot.

    Cells out of view are laid out lazily (CSS content-visibility), so the
    first scroll can land short; scroll again once the layout has settled."""
    cell = cells(page).nth(index)
    for _ in range(3):
        cell.evaluate("element => element.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(300)


def set_source(page: Page, index: int, text: str) -> None:
    """Replace a code cell's text, as a student typing (pasting) into it."""
    cells(page).nth(index).locator(".cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)  # one input event: no auto-indent or bracket closing
    page.keyboard.press("Escape")


def restart_and_run_all(page: Page) -> None:
    menu(page, "Run", "Restart Kernel and Run All Cells…")
    page.get_by_role("button", name="Confirm Kernel Restart").click()


def save_notebook(page: Page) -> None:
    page.keyboard.press("Control+S")
    expect(page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty")).to_have_count(0)


# --- nbgrader's formgrader ----------------------------------------------------


def open_formgrader(page: Page) -> FrameLocator:
    """Nbgrader > Formgrader: nbgrader's pages in an iframe in a Lab tab."""
    menu(page, "Nbgrader", "Formgrader")
    formgrader = page.frame_locator("iframe[src*='formgrader']")
    expect(formgrader.get_by_role("heading", name="Manage Assignments")).to_be_visible()
    return formgrader
