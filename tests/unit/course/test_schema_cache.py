"""The cached schema check validates nbgrader cell metadata exactly as jsonschema.validate does."""

from __future__ import annotations

import jsonschema
import pytest
from nbformat.v4 import new_code_cell
from nbgrader.nbgraderformat import common
from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

from autograder.course.schema_cache import cache_schema_checks


@pytest.fixture
def cached(monkeypatch):
    monkeypatch.setattr(common, "jsonschema", common.jsonschema)  # restored after the test
    cache_schema_checks()


def grade_cell(**meta):
    cell = new_code_cell("x = 1")
    cell.metadata["nbgrader"] = {
        "schema_version": 3,
        "grade": True,
        "solution": False,
        "locked": False,
        "grade_id": "cell-1",
        "points": 1.0,
        **meta,
    }
    return cell


def test_valid_metadata_passes_and_invalid_fails_with_jsonschemas_own_error(cached):
    validator = MetadataValidatorV3()
    validator.validate_cell(grade_cell())
    bad = grade_cell(points="many")
    with pytest.raises(jsonschema.ValidationError) as cached_error:
        validator.validate_cell(bad)
    with pytest.raises(jsonschema.ValidationError) as plain_error:
        jsonschema.validate(bad.metadata["nbgrader"], validator.schema)
    assert cached_error.value.message == plain_error.value.message
    assert not isinstance(common.jsonschema, type(jsonschema))  # the cached check is the one in use
