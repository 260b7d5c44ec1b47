"""The system's Chromium, headless, driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Debian's `chromium` package; KIT_CHROMIUM points elsewhere if needed.
EXECUTABLE = os.environ.get("KIT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"

# Without the background-networking flags Chromium keeps calling Google
# services, which only time out on a closed network.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

VIEWPORT = {"width": 1400, "height": 900}


def available() -> str | None:
    """None if the browser tests can run, else why not."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install -r requirements.txt)"
    if not Path(EXECUTABLE).exists():
        return f"no Chromium at {EXECUTABLE} (apt-get install chromium, or set KIT_CHROMIUM)"
    return None


def launch(playwright, user_data_dir: Path):
    """A persistent context in a fresh profile directory."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=EXECUTABLE,
        args=ARGS,
        headless=True,
        viewport=VIEWPORT,
    )
