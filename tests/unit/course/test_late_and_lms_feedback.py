"""The late policy's arithmetic (nbgrader's plugin API) and the Moodle feedback folder names, without a course."""

from __future__ import annotations

import re

import pytest
from traitlets.config import Config

from autograder.course.late import LatePenalty, LateWork, lateness
from autograder.course.lms_feedback import moodle_folder
from autograder.errors import KitError

DAY = 86400.0


def plugin(**settings) -> LatePenalty:
    return LatePenalty(config=Config({"LatePenalty": {"penalty_method": "per_day", **settings}}))


def test_per_day_takes_a_share_of_the_score_per_started_day():
    p = plugin(percent_per_day=10.0, grace_minutes=15.0, zero_after_days=5.0)
    assert p.late_submission_penalty("s", 20.0, 10 * 60) == 0.0  # inside the grace period
    assert p.late_submission_penalty("s", 20.0, 16 * 60) == 2.0  # the first started day
    assert p.late_submission_penalty("s", 20.0, DAY + 15 * 60 + 1) == 4.0  # a second day, after the grace
    assert p.late_submission_penalty("s", 20.0, 5 * DAY + 15 * 60) == 20.0  # zero from five days on
    assert p.late_submission_penalty("s", 0.0, 3 * DAY) == 0.0
    assert plugin(percent_per_day=40.0).late_submission_penalty("s", 10.0, 3 * DAY) == 10.0  # never above the score


def test_nbgrader_methods_keep_their_meaning():
    assert (
        LatePenalty(config=Config({"LatePenalty": {"penalty_method": "zero"}})).late_submission_penalty("s", 17.0, 60)
        == 17.0
    )
    assert LatePenalty().late_submission_penalty("s", 17.0, 60) is None  # nbgrader's default: none


def test_a_due_date_nbgrader_cannot_read_is_refused():
    assert (
        LateWork(config=Config({"LateWork": {"due_date": " 2026-11-20 17:00:00 UTC "}})).due_date
        == "2026-11-20 17:00:00 UTC"
    )
    with pytest.raises(KitError, match="not a date"):
        LateWork(config=Config({"LateWork": {"due_date": "next friday-ish"}}))


def test_lateness_reads_as_words():
    assert lateness(90000.0) == "1 day 1 hour" and lateness(120) == "2 minutes" and lateness(5) == "5 seconds"


@pytest.mark.parametrize(
    "name",
    [
        "Ann Lee",
        "../../etc/passwd",
        "a/b\\c",
        "x_1_assignsubmission_file_y",
        ".hidden",
        "<script>",
        "",
        "Zoë Ünal",
        "a\x00b\nc",
    ],
)
def test_moodle_folders_are_one_path_part_moodle_reads_back(name):
    folder = moodle_folder(name, "2001")
    # Moodle's importer: explode('_', part, 5) -> full name, participant id, plugin type, plugin name, rest
    info = folder.split("_", 4)
    assert info[1:4] == ["2001", "assignsubmission", "file"] and info[4] == ""
    assert "/" not in folder and "\\" not in folder and not folder.startswith(".") and ".." not in info[0]
    assert re.fullmatch(r"[\w .()+,-]+", info[0])
    with pytest.raises(ValueError):
        moodle_folder(name, "20/01")
