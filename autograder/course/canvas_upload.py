"""Canvas grades straight into Canvas: ``spamkit export --upload``.

The rows are those of ``canvas_grades.csv`` (``lms_export``), nothing else:
the same students, ids and points. They go through ``canvasapi`` to Canvas'
"Grade or comment on multiple submissions" endpoint::

    POST /api/v1/courses/<course id>/assignments/<assignment id>/submissions/update_grades
    grade_data[<Canvas user id>][posted_grade]=<points>      (form fields, one pair per student)

which answers with a Progress object (``{"id": ..., "workflow_state":
"queued", "url": ".../api/v1/progress/<id>", ...}``); the upload is done
when ``GET /api/v1/progress/<id>`` says ``completed`` (or ``failed``, with
a ``message``). Before that, the assignment is read
(``GET /api/v1/courses/<course id>/assignments/<assignment id>``): if its
``points_possible`` differs from the lab's maximum, nothing is sent, as raw
points on another scale would be wrong grades.

The course address and id are settings (``LmsExport.canvas_url``,
``LmsExport.canvas_course_id``); the assignment id is the one in
``LmsExport.canvas_assignment`` ("Spam lab (12345)"); the API token (Canvas:
*Account → Settings → New access token*) comes from the environment
variable ``CANVAS_API_TOKEN`` only, never from a file in the course.
"""

from __future__ import annotations

import re
import time

from ..errors import UploadError
from .lms_export import number_cell

TOKEN_VARIABLE = "CANVAS_API_TOKEN"


def assignment_id(column: str) -> int:
    found = re.search(r"\((\d+)\)\s*$", column)
    if not found:
        raise UploadError(
            f"the Canvas column {column!r} names no assignment id: set LmsExport.canvas_assignment "
            'to "Title (assignment id)" as in Canvas\' gradebook export'
        )
    return int(found[1])


def upload(settings, files, token: str, poll_seconds: float = 1.0, limit_seconds: float = 300.0) -> str:
    """Send the Canvas file's grades (``files``: an ``LmsFiles``) to Canvas; returns what was done."""
    import requests
    from canvasapi import Canvas
    from canvasapi.exceptions import CanvasException

    rows = files.matched.get("canvas")
    if rows is None:
        raise UploadError("there is no Canvas file to upload: no Canvas ids were collected and no Canvas roster is set")
    if not settings.canvas_url or not settings.canvas_course_id:
        raise UploadError("set LmsExport.canvas_url and LmsExport.canvas_course_id to upload")
    if not token:
        raise UploadError(f"set the environment variable {TOKEN_VARIABLE} to a Canvas API token to upload")
    aid = assignment_id(files.canvas_column)
    where = f"assignment {aid} of course {settings.canvas_course_id} at {settings.canvas_url}"
    try:
        canvas = Canvas(settings.canvas_url, token)
        assignment = canvas.get_course(settings.canvas_course_id).get_assignment(aid)
        points = getattr(assignment, "points_possible", None)
        if points is not None and float(points) != files.max_score:
            raise UploadError(
                f"Canvas {where} has {float(points):g} points possible, the lab {files.max_score:g}: "
                "nothing uploaded (set the Canvas assignment's points to the lab's)"
            )
        if not rows:
            return f"no grades to upload to Canvas {where}"
        progress = assignment.submissions_bulk_update(
            grade_data={m.lms_id: {"posted_grade": number_cell(m.score)} for m in rows}
        )
        deadline = time.monotonic() + limit_seconds
        while progress.workflow_state not in ("completed", "failed"):
            if time.monotonic() > deadline:
                raise UploadError(
                    f"Canvas has not finished the upload after {limit_seconds:g} s; "
                    f"see {getattr(progress, 'url', 'its progress')}"
                )
            time.sleep(poll_seconds)
            progress = progress.query()
    except CanvasException as exc:
        raise UploadError(f"Canvas refused ({type(exc).__name__}): {exc}") from None
    except requests.RequestException as exc:
        raise UploadError(f"cannot reach Canvas at {settings.canvas_url}: {type(exc).__name__}") from None
    if progress.workflow_state == "failed":
        raise UploadError(f"Canvas reports the upload failed: {getattr(progress, 'message', '') or 'no reason given'}")
    return f"{len(rows)} grade(s) uploaded to Canvas {where}"
