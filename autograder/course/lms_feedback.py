"""Feedback back through the LMS: a Moodle feedback-files zip, Canvas submission comments.

``spamkit feedback --lms moodle`` / ``--lms canvas`` takes each student's
feedback page (``feedback/<student>/<assignment>/<notebook>.html``, made by
nbgrader's generate_feedback) to the LMS the submission came from. Who is who
comes from the download's file names (``lms_ids``), as for the grade files.
Left out, and listed with the reason (``exports/lms_feedback_unlisted.csv``
and the command's output): a student whose result must not be sent
(``publish.held_back``: grader error, not graded yet), without a grade in the
gradebook, without an LMS id (or with conflicting ones), or without a
feedback page.

**Moodle** (``exports/moodle_feedback.zip``), for the assignment's *View all
submissions → Grading action → Upload multiple feedback files in a zip*. One
folder per participant, named as Moodle's own "Download all submissions"
names it::

    Ann Lee_2001_assignsubmission_file_/spam_transformer_feedback.html

Moodle's importer (``assignfeedback_file_zip_importer``) splits each path
part at ``_`` into full name, participant id, plugin type and plugin name
(with or without the trailing ``_`` of Moodle before 4.1); only the
participant id identifies the student, so the name is cosmetic: it comes from
the download's file name with ``_`` made a space (as Moodle writes it) and
every character that is not a letter, digit, space or ``.()+,-`` replaced, so
no name can make a path outside the student's folder. A file that differs
from the student's submitted files is added as their feedback file (a later
zip with a changed page replaces it).

**Canvas**: through canvasapi, one comment per student on their submission
(the same Canvas settings and ``CANVAS_API_TOKEN`` as ``spamkit export
--upload``): the page is uploaded as a comment file (``POST
/api/v1/courses/:course/assignments/:assignment/submissions/:user/comments/files``,
then the file to the ``upload_url`` Canvas answers with) and attached with a
short text comment (``PUT .../submissions/:user`` with ``comment[text_comment]``
and ``comment[file_ids][]``). What was sent is recorded in
``.kit/lms/<assignment>.canvas_feedback.json``; an unchanged page is not sent
again (``--force`` sends it anyway).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UploadError
from . import lms_ids, publish
from .lms_export import (
    UNLISTED_COLUMNS,
    LmsExport,
    Unlisted,
    gradebook_grades,
    match_students,
    unlisted_rows,
    write_csv,
)
from .sanitize import safe_file_name
from .store import write_json_atomic

UNLISTED_FILE = "lms_feedback_unlisted.csv"
MOODLE_ZIP = "moodle_feedback.zip"
MOODLE_SUFFIX = "_assignsubmission_file_"


@dataclass
class FeedbackSent:
    """What one LMS feedback run did."""

    lms: str
    sent: list[str] = field(default_factory=list)  # students whose feedback is in the zip / was posted
    unchanged: list[str] = field(default_factory=list)  # Canvas: already sent, same page
    unlisted: list[Unlisted] = field(default_factory=list)
    path: Path | None = None  # the zip (Moodle)
    unlisted_csv: Path | None = None
    failed: dict[str, str] = field(default_factory=dict)  # Canvas: student -> what Canvas said


def feedback_page(course, student: str) -> Path:
    return course.folder("feedback", student) / f"{course.notebook}.html"


def _matched(course, lms: str, out: FeedbackSent):
    """Students with an LMS id, a grade that may be sent and a feedback page; the others on ``out.unlisted``."""
    ids = lms_ids.read_ids(course.root, course.assignment)
    held = publish.held_back(course)
    grades, max_score = gradebook_grades(course.coursedir.db_url, course.coursedir.course_id, course.assignment)
    match = match_students(lms, grades, ids, None, "", held)
    out.unlisted += match.unlisted
    rows = []
    for m in match.rows:
        page = feedback_page(course, m.student)
        if page.is_file():
            rows.append((m, page))
        else:
            out.unlisted.append(
                Unlisted(
                    lms_ids.LMS_NAMES[lms],
                    m.student,
                    m.lms_id,
                    m.name,
                    m.score,
                    "no feedback page: run spamkit feedback",
                )
            )
    return rows, max_score


def _write_unlisted(course, out: FeedbackSent) -> None:
    from .exports import Exports

    folder = course.root / Exports(config=course.config).directory
    out.unlisted_csv = write_csv(folder / UNLISTED_FILE, UNLISTED_COLUMNS, unlisted_rows(out.unlisted))


def moodle_folder(name: str, participant_id: str) -> str:
    """``Full Name_<participant id>_assignsubmission_file_``: one path part, whatever the name holds."""
    if not participant_id.isdigit():
        raise ValueError(f"a Moodle participant id is a number, not {participant_id!r}")
    shown = " ".join(safe_file_name(name).replace("_", " ").split()).strip(" .")[:80] or "Participant"
    return f"{shown}_{participant_id}{MOODLE_SUFFIX}"


def moodle_zip(course) -> FeedbackSent:
    """``exports/moodle_feedback.zip`` for Moodle's *Upload multiple feedback files in a zip*."""
    from .exports import Exports

    out = FeedbackSent("moodle")
    rows, _ = _matched(course, "moodle", out)
    folder = course.root / Exports(config=course.config).directory
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / MOODLE_ZIP
    tmp = dest.with_name(f".{dest.name}.tmp")
    file_name = f"{safe_file_name(course.notebook)}_feedback.html"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for m, page in rows:
            zf.writestr(f"{moodle_folder(m.name, m.lms_id)}/{file_name}", page.read_bytes())
            out.sent.append(m.student)
    tmp.replace(dest)
    out.path = dest
    _write_unlisted(course, out)
    return out


def _sent_path(course) -> Path:
    return lms_ids.ids_path(course.root, course.assignment).with_suffix(".canvas_feedback.json")


def canvas_comments(course, token: str, force: bool = False) -> FeedbackSent:
    """Each student's feedback page as a comment (file and text) on their Canvas submission."""
    import requests
    from canvasapi import Canvas
    from canvasapi.exceptions import CanvasException
    from canvasapi.upload import Uploader

    from ..internals.canvasapi import requester_of
    from .canvas_upload import TOKEN_VARIABLE, assignment_id

    settings = LmsExport(config=course.config)
    if not settings.canvas_url or not settings.canvas_course_id:
        raise UploadError("set LmsExport.canvas_url and LmsExport.canvas_course_id to send feedback to Canvas")
    if not token:
        raise UploadError(f"set the environment variable {TOKEN_VARIABLE} to a Canvas API token")
    aid = assignment_id(settings.canvas_assignment or course.assignment)
    out = FeedbackSent("canvas")
    rows, max_score = _matched(course, "canvas", out)
    sent_path = _sent_path(course)
    try:
        sent = json.loads(sent_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        sent = {}
    try:
        assignment = Canvas(settings.canvas_url, token).get_course(settings.canvas_course_id).get_assignment(aid)
    except CanvasException as exc:
        raise UploadError(f"Canvas refused ({type(exc).__name__}): {exc}") from None
    except requests.RequestException as exc:
        raise UploadError(f"cannot reach Canvas at {settings.canvas_url}: {type(exc).__name__}") from None
    for m, page in rows:
        data = page.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if not force and sent.get(m.student, {}).get("sha256") == digest and sent[m.student].get("id") == m.lms_id:
            out.unchanged.append(m.student)
            continue
        try:
            submission = assignment.get_submission(int(m.lms_id))
            with open(page, "rb") as fh:
                ok, answer = Uploader(
                    requester_of(submission),
                    f"courses/{settings.canvas_course_id}/assignments/{aid}/submissions/{int(m.lms_id)}/comments/files",
                    fh,
                ).start()
            if not ok or "id" not in answer:
                raise UploadError(f"Canvas did not take the file: {str(answer)[:200]}")
            text = (
                f"Autograded feedback for {course.assignment}: {m.score:g} / {max_score:g} points. "
                "The attached page shows each check."
            )
            submission.edit(comment={"text_comment": text, "file_ids": [answer["id"]]})
        except (CanvasException, UploadError, ValueError) as exc:
            out.failed[m.student] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        except requests.RequestException as exc:
            out.failed[m.student] = f"cannot reach Canvas: {type(exc).__name__}"
            continue
        sent[m.student] = {"id": m.lms_id, "sha256": digest}
        write_json_atomic(sent_path, sent)
        out.sent.append(m.student)
    _write_unlisted(course, out)
    return out
