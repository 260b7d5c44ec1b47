"""What came in: every kind of submission gets its status; LMS downloads are mapped to the released notebook."""

from __future__ import annotations

import nbformat
from kit_testing import ASSIGNMENT

from autograder.course import intake
from autograder.model import Status


def test_inventory_reports_every_kind_of_submission(tmp_path):
    sub = tmp_path / "submitted"
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])

    def put(student: str, name: str, data: bytes) -> None:
        (sub / student / ASSIGNMENT).mkdir(parents=True, exist_ok=True)
        (sub / student / ASSIGNMENT / name).write_bytes(data)

    put("ok", f"{ASSIGNMENT}.ipynb", nbformat.writes(good).encode())
    put("several", f"{ASSIGNMENT}.ipynb", nbformat.writes(good).encode())
    put("several", "scratch.ipynb", nbformat.writes(good).encode())
    put("renamed", "Copy of lab.ipynb", nbformat.writes(good).encode())
    put("empty", f"{ASSIGNMENT}.ipynb", b"")
    put("corrupt", f"{ASSIGNMENT}.ipynb", nbformat.writes(good).encode()[:40])
    put("nocells", f"{ASSIGNMENT}.ipynb", nbformat.writes(nbformat.v4.new_notebook()).encode())
    put("onlydata", "data.csv", b"a,b\n")
    entries = {e.student: e for e in intake.inventory(sub, ASSIGNMENT, ASSIGNMENT, roster=["absent", "ok"])}

    assert {k: e.status for k, e in entries.items()} == {
        "absent": Status.NO_SUBMISSION,
        "ok": Status.OK,
        "several": Status.OK,
        "renamed": Status.WRONG_NAME,
        "empty": Status.EMPTY,
        "corrupt": Status.UNREADABLE,
        "nocells": Status.EMPTY,
        "onlydata": Status.NO_SUBMISSION,
    }
    assert entries["several"].notes == ["other notebooks ignored: scratch.ipynb"]
    assert "Copy of lab.ipynb" in entries["renamed"].message
    assert intake.fix_names(sub, ASSIGNMENT, ASSIGNMENT) == [f"renamed: Copy of lab.ipynb -> {ASSIGNMENT}.ipynb"]
    assert (sub / "renamed" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()


def lms_collector(tmp_path, lms: str, files: list[str], **settings):
    """nbgrader's zip_collect app over a course in tmp_path, with the kit's collector and ``files`` extracted."""
    from nbgrader.apps.zipcollectapp import ZipCollectApp
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    from autograder.nbgrader_plugins import LmsCollector

    config = Config({"CourseDirectory": {"root": str(tmp_path), "assignment_id": ASSIGNMENT}})
    app = ZipCollectApp(config=config, coursedir=CourseDirectory(config=config))
    (tmp_path / "release" / ASSIGNMENT).mkdir(parents=True)
    (tmp_path / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text("{}")
    extracted = tmp_path / "downloaded" / ASSIGNMENT / "extracted"
    for name in files:
        (extracted / name).parent.mkdir(parents=True, exist_ok=True)
        (extracted / name).write_text("{}")
    collector = LmsCollector(parent=app, lms=lms, **settings)
    return {name: collector.collect(str(extracted / name)) for name in files}


def test_lms_collector_maps_canvas_names_to_the_released_notebook(tmp_path):
    found = lms_collector(
        tmp_path,
        "canvas",
        [
            "doejane_12345_900001_spam_transformer-1.ipynb",  # Canvas' resubmission suffix
            "roejim_late_23456_900002_My Lab.ipynb",  # late, renamed by the student, their only notebook
            "leeann_34567_900003_a.ipynb",  # two notebooks, neither named like the lab's
            "leeann_34567_900004_b.ipynb",
            "kimbo_45678_900005_spam_transformer.ipynb",
            "kimbo_45678_900006_spam_transformer (2).ipynb",  # the right name is there already: left as it is
            "readme.txt",
        ],
    )
    assert {name: (info or {}).get("student_id") for name, info in found.items()} == {
        "doejane_12345_900001_spam_transformer-1.ipynb": "12345",
        "roejim_late_23456_900002_My Lab.ipynb": "23456",
        "leeann_34567_900003_a.ipynb": "34567",
        "leeann_34567_900004_b.ipynb": "34567",
        "kimbo_45678_900005_spam_transformer.ipynb": "45678",
        "kimbo_45678_900006_spam_transformer (2).ipynb": "45678",
        "readme.txt": None,
    }
    assert {name: info["file_id"] for name, info in found.items() if info} == {
        "doejane_12345_900001_spam_transformer-1.ipynb": f"{ASSIGNMENT}.ipynb",
        "roejim_late_23456_900002_My Lab.ipynb": f"{ASSIGNMENT}.ipynb",
        "leeann_34567_900003_a.ipynb": "a.ipynb",
        "leeann_34567_900004_b.ipynb": "b.ipynb",
        "kimbo_45678_900005_spam_transformer.ipynb": f"{ASSIGNMENT}.ipynb",
        "kimbo_45678_900006_spam_transformer (2).ipynb": "spam_transformer (2).ipynb",
    }


def test_lms_collector_moodle_and_custom_naming(tmp_path):
    moodle = lms_collector(
        tmp_path / "moodle",
        "moodle",
        [
            "Jane Doe_111_assignsubmission_file_spam_transformer.ipynb",
            "Jim Roe_222_assignsubmission_file_/spam_transformer (1).ipynb",  # "download in folders"
        ],
    )
    assert [(i["student_id"], i["file_id"]) for i in moodle.values()] == [
        ("111", f"{ASSIGNMENT}.ipynb"),
        ("222", f"{ASSIGNMENT}.ipynb"),
    ]
    custom = lms_collector(
        tmp_path / "custom",
        "custom",
        ["s-007--lab.ipynb"],
        named_regexp=r".*/s-(?P<student_id>\d+)--(?P<file_id>[^/]+)$",
    )
    assert custom["s-007--lab.ipynb"] == {"student_id": "007", "file_id": f"{ASSIGNMENT}.ipynb"}
