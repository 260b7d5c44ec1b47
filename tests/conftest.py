"""Two tiers: tests/unit (fast: no TensorFlow, no bubblewrap, no kernels) and tests/integration (marked slow).

``python -m pytest tests/unit`` (or ``-m "not slow"``) runs the fast tier while developing; CI runs both,
through ``./kit.sh test``, on two pytest-xdist workers (``-n 2 --dist loadgroup``): much of an
integration test is waiting (a timeout to pass, a browser, a server), which the other worker fills.
Each integration module is one unit of work (its module fixtures are made once), and the modules that
share an expensive session fixture are one unit together, so that its class is graded once.
"""

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))


SHARED_SESSION_FIXTURES = ("graded_course", "dask_cluster")   # of tests/integration/conftest.py


@pytest.hookimpl(tryfirst=True)   # before xdist's loadgroup reads the groups
def pytest_collection_modifyitems(config, items):
    integration = [item for item in items if (TESTS / "integration") in Path(item.path).parents]
    sharing = {Path(item.path) for item in integration
               if any(name in item.fixturenames for name in SHARED_SESSION_FIXTURES)}
    for item in integration:
        item.add_marker(pytest.mark.slow)
        path = Path(item.path)
        group = "shared-session-fixtures" if path in sharing else path.relative_to(TESTS).as_posix()
        item.add_marker(pytest.mark.xdist_group(group))
