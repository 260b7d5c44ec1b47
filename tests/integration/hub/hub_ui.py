"""What the hub's users do in the browser: log in, nbgrader's Assignments tab, formgrader's buttons."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import headless_chromium
import lab_ui
from playwright.sync_api import Locator, Page, expect

GRADING_TIMEOUT = 900_000  # ms: formgrader's Autograde trains the notebook in the sandbox


@contextmanager
def logged_in(playwright, profile: Path, base: str, user: str, password: str):
    """A browser of the user's own (fresh profile), logged in through the hub's login page, at their JupyterLab."""
    context = headless_chromium.launch(playwright, profile)
    context.set_default_timeout(60_000)
    page = context.pages[0] if context.pages else context.new_page()
    lab_ui.take_the_offered_kernel(page)
    try:
        page.goto(f"{base}hub/login")
        page.locator("#username_input").fill(user)
        page.locator("#password_input").fill(password)
        page.locator("#login_submit").click()
        page.wait_for_url(f"{base}user/{user}/lab**", timeout=180_000)  # the hub spawns the server first
        expect(page.get_by_role("menuitem", name="Nbgrader")).to_be_visible(timeout=120_000)
        yield page
    except Exception:
        lab_ui.save_screenshot(page, f"hub-{user}-failure")
        raise
    finally:
        context.close()


def api(page: Page, method: str, url: str, data: dict | None = None):
    """A Jupyter API call from the page's session (its cookies, its server's XSRF token)."""
    xsrf = next((c["value"] for c in page.context.cookies() if c["name"] == "_xsrf"), "")
    return page.request.fetch(
        url,
        method=method,
        headers={"X-XSRFToken": xsrf, "Content-Type": "application/json"},
        data=json.dumps(data) if data is not None else None,
        max_redirects=5,
    )


# --- a student's Assignments tab ---------------------------------------------------------------------


def open_assignments(page: Page) -> Locator:
    lab_ui.menu(page, "Nbgrader", "Assignment List")
    panel = page.locator("#nbgrader-assignment-list")
    expect(panel).to_be_visible()
    return panel


def click_and_wait(button: Locator, done: Locator, timeout: float = 120_000) -> None:
    button.click()
    expect(done).to_be_visible(timeout=timeout)


# --- formgrader ------------------------------------------------------------------------------------------


def formgrader_action(page: Page, icon: Locator, timeout: float = 120_000) -> str:
    """Click one of formgrader's action icons; its result dialog must say Success. The dialog's text."""
    icon.click()
    dialog = page.locator("#success-modal, #error-modal")
    expect(dialog).to_be_visible(timeout=timeout)
    text = dialog.inner_text()
    assert dialog.get_attribute("id") == "success-modal", text[-4000:]
    dialog.get_by_role("button", name="Close").first.click()
    expect(dialog).to_have_count(0)
    return text


def assignment_row(page: Page, assignment: str) -> Locator:
    return page.locator("tr").filter(has=page.get_by_role("link", name=assignment, exact=True))
