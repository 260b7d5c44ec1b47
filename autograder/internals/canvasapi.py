"""canvasapi internals the kit relies on (course/lms_feedback.py: feedback pages as Canvas comments)."""

FENCED = (
    # The requester a Submission was fetched with, to upload a comment file without posting a comment:
    # the public ``Submission.upload_comment`` uploads and then posts a comment of its own holding only the
    # file, while the kit posts one comment with the file and its text (canvasapi has no public upload step).
    "canvasapi.canvas_object:CanvasObject._requester",  # set by CanvasObject.__init__ (instance attribute)
)


def requester_of(canvas_object):
    """The canvasapi Requester ``canvas_object`` talks to Canvas through."""
    return canvas_object._requester
