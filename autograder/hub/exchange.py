"""nbgrader's exchange folder, made by root before anyone can squat it.

The modes are nbgrader's own (exchange/default/release_assignment.py, release_feedback.py); nbgrader
checks them again when the instructor releases:

- the root: ``rwxrwxrwx`` as nbgrader wants, plus the sticky bit, so no user can rename or delete
  another's entry; the course's folder in it is made here, owned by the instructor, so that no student
  can make it first (``Exchange.path_includes_course = True``);
- ``outbound/`` 0755: everyone fetches the released notebook;
- ``inbound/`` 2733: everyone may write a submission in, nobody but the instructor may list it; each
  submission is named ``<student>+<assignment>+<timestamp>+<random>``, so that another student
  cannot guess its name;
- ``feedback/`` 0711: feedback files are named by a hash of the submission they answer, which only its
  author holds.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

MODES = {"outbound": 0o755, "inbound": 0o2733, "feedback": 0o711}


def make(root: Path, course_id: str, instructor: str) -> Path:
    """The exchange root and the course's folders in it; the course's folder."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o1777)
    account = pwd.getpwnam(instructor)
    course = root / course_id
    course.mkdir(exist_ok=True)
    for folder, mode in [(course, 0o755), *((course / name, mode) for name, mode in MODES.items())]:
        folder.mkdir(exist_ok=True)
        os.chown(folder, account.pw_uid, account.pw_gid)
        os.chmod(folder, mode)
    return course
