"""The hub tests drive Chromium with the browser tests' helpers (tests/integration/browser/)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "browser"))

import headless_chromium  # noqa: E402


def pytest_collection_modifyitems(config, items):
    reason = headless_chromium.available()
    if os.geteuid() != 0 or not shutil.which("useradd"):
        reason = reason or "the hub makes Unix accounts and cgroups: needs root and useradd"
    if reason:
        for item in items:
            if Path(item.path).parent == Path(__file__).parent:
                item.add_marker(pytest.mark.skip(reason=reason))
