"""The Jupyter configuration of each role, in a root-owned folder the spawner names in JUPYTER_CONFIG_PATH.

Both roles: nbgrader's exchange (``Exchange.root``, ``path_includes_course``), the course id, and
nbgrader's JupyterHubAuthPlugin (a user's courses are the hub groups ``nbgrader-<course>`` and
``formgrade-<course>`` they are in). Students: only the *Assignments* tab (formgrader, Create
Assignment and the course list are off, in JupyterLab and in the server). The instructor: formgrader
on the course root in their home, which loads the course's course_config.py (the kit's grading).
"""

from __future__ import annotations

import json
from pathlib import Path

STUDENT_OFF_LAB = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
)
STUDENT_OFF_SERVER = ("nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list")
QUIET_LAB = {"news_url": None, "check_for_updates_class": "jupyterlab.NeverCheckForUpdate"}  # no calls out


def _exchange_settings(course_id: str, exchange_root: str) -> str:
    return (
        f"c.CourseDirectory.course_id = {course_id!r}\n"
        f"c.Exchange.root = {exchange_root!r}\n"
        "c.Exchange.path_includes_course = True\n"
        "c.Authenticator.plugin_class = 'nbgrader.auth.JupyterHubAuthPlugin'\n"
    )


def _write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o644)


def write(config_root: Path, course_id: str, exchange_root: str, course_root: Path) -> dict[str, Path]:
    """One folder per role (readable by all: it holds no secret); role -> folder."""
    student, instructor = config_root / "student", config_root / "instructor"
    header = (
        "# Written by the hub command (autograder/hub/user_config.py); changes are overwritten.\n"
        "c = get_config()  # noqa: F821\n"
    )
    _write(
        student,
        "nbgrader_config.py",
        header
        + _exchange_settings(course_id, exchange_root)
        # graded on submit: refused in the Assignments tab over the daily cap (autograder/hub/on_submit.py)
        + "c.ExchangeFactory.submit = 'autograder.hub.on_submit.CappedSubmit'\n",
    )
    off_server = {
        "ServerApp": {"jpserver_extensions": {name: False for name in STUDENT_OFF_SERVER}},
        "LabApp": QUIET_LAB,
    }
    _write(student, "jupyter_server_config.json", json.dumps(off_server, indent=1))
    off_lab = {"disabledExtensions": {name: True for name in STUDENT_OFF_LAB}}
    _write(student, "labconfig/page_config.json", json.dumps(off_lab, indent=1))
    _write(
        instructor,
        "nbgrader_config.py",
        header
        + f"load_subconfig({str(course_root / 'nbgrader_config.py')!r})  # noqa: F821 - the course, the kit's grading\n"
        + _exchange_settings(course_id, exchange_root),
    )
    _write(instructor, "jupyter_server_config.json", json.dumps({"LabApp": QUIET_LAB}, indent=1))
    for folder in (config_root, student, instructor, student / "labconfig"):
        folder.chmod(0o755)
    return {"student": student, "instructor": instructor}
