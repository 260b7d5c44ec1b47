"""Two tiers: tests/unit (fast: no TensorFlow, no bubblewrap, no kernels) and tests/integration (marked slow).

``python -m pytest tests/unit`` (or ``-m "not slow"``) runs the fast tier while developing; CI runs both.
"""

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (TESTS / "integration") in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)
