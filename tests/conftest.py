"""Two tiers: tests/unit (fast: no TensorFlow, no bubblewrap, no kernels) and tests/integration (marked slow).

``python -m pytest tests/unit`` (or ``-m "not slow"``) runs the fast tier while developing; CI runs both,
through ``./kit.sh test``, on two pytest-xdist workers (``-n 2``): much of an integration test is
waiting (a timeout to pass, a browser, a server), which the other worker fills. The unit of work a
worker takes is a test file, so a module's fixtures are made once; the files that share an expensive
session fixture are one unit together (``SHARED_UNITS``), so that its class is graded once. Files are
handed out longest first (``LONGEST_FIRST``, then the other integration files, then the fast tier),
so that no long file starts last while the other worker has nothing left to do.
"""

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS))

# Session fixtures of tests/integration/conftest.py that grade a class or start a cluster, and the
# test files that use them (checked at collection: a new user must be listed here).
SHARED_SESSION_FIXTURES = ("graded_course", "dask_cluster")
SHARED_UNITS = {
    "tests/integration/course/test_batch.py": "graded class",
    "tests/integration/course/test_exports.py": "graded class",
    "tests/integration/browser/test_formgrader.py": "graded class",
}


# The integration files that take longest (a minute or more of fixtures on a 2-core machine), longest first.
LONGEST_FIRST = (
    "tests/integration/grading/test_corpus.py",
    "tests/integration/sandbox/test_adversarial.py",
    "tests/integration/hub/test_course_hub.py",
    "tests/integration/test_feedback.py",
    "tests/integration/course/test_batch.py",
    "tests/integration/course/test_postgres.py",
    "tests/integration/course/test_identical_code.py",
    "tests/integration/browser/test_student_content.py",
    "tests/integration/course/test_recheck.py",
    "tests/integration/browser/test_student_notebook.py",
)


def _order(item) -> tuple:
    where = Path(item.path).relative_to(TESTS.parent).as_posix()
    if where in LONGEST_FIRST:
        return (0, LONGEST_FIRST.index(where))
    return (1 if where.startswith("tests/integration/") else 2, 0)


def pytest_collection_modifyitems(config, items):
    items.sort(key=_order)  # stable: a file's tests stay together and in their order
    for item in items:
        if (TESTS / "integration") in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)
        if any(name in item.fixturenames for name in SHARED_SESSION_FIXTURES):
            where = Path(item.path).relative_to(TESTS.parent).as_posix()
            if where not in SHARED_UNITS:
                raise pytest.UsageError(
                    f"{where} uses {SHARED_SESSION_FIXTURES}: add it to SHARED_UNITS in "
                    "tests/conftest.py, so that the class is graded once under xdist"
                )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """Units of work: a test file, or the files of one shared fixture together, in the collection's order
    (longest first)."""
    from autograder.internals.xdist import scheduler_by_unit

    def unit_of(nodeid: str) -> str:
        path = nodeid.split("::", 1)[0]
        return SHARED_UNITS.get(path, path)

    return scheduler_by_unit(config, log, unit_of)
