"""Fixtures for the browser tests: headless Chromium, screenshots on failure."""

from __future__ import annotations

import headless_chromium
import pytest


def pytest_collection_modifyitems(config, items):
    reason = headless_chromium.available()
    if reason:
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def page(tmp_path):
    """A page in a fresh Chromium profile; closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = headless_chromium.launch(playwright, tmp_path / "chromium-profile")
        context.set_default_timeout(30_000)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing test, save what the browser showed and name the file in the report."""
    report = yield
    if report.when == "call" and report.failed and "page" in getattr(item, "funcargs", {}):
        try:
            from lab_ui import save_screenshot

            path = save_screenshot(item.funcargs["page"], f"{item.name}-failure")
            report.sections.append(("browser screenshot", f"saved to {path}"))
        except Exception as exc:  # the browser may be gone already
            report.sections.append(("browser screenshot", f"could not be saved: {exc}"))
    return report
