import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kit_testing import make_course  # noqa: E402


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """One generated course for the whole session (release + gradebook)."""
    return make_course(tmp_path_factory.mktemp("course"))
