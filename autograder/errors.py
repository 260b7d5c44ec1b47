"""Every exception the kit raises on purpose, in one module.

``exit_code`` is what ``spamkit`` exits with when one of them ends a command.
Inside a batch none of them stops the class: a submission's own failure is
reported on that student's line and the batch goes on.
"""

from __future__ import annotations


class KitError(RuntimeError):
    """Base of the kit's errors: the message says what happened and what to do."""

    exit_code = 1


class UsageError(KitError):
    """The command was used wrongly (a folder that is not a course root, an unknown option)."""

    exit_code = 2


class UnknownCheck(KitError):
    """``--check`` names no check of the graded results."""

    exit_code = 2


class BatchError(KitError):
    """The batch cannot start; the message says why."""


class JobUnavailable(BatchError):
    """The grading job (given code, data splits, checks' settings) cannot be built: nobody can be graded."""


class BatchRunning(BatchError):
    """Another batch holds the course's lock."""

    exit_code = 3


class SandboxUnavailable(KitError):
    """No sandbox can be made here and the course did not opt out."""


class CheckProcessFailed(KitError):
    """The check process died or did not answer in time."""


class LmsExportError(KitError):
    """A roster file the LMS export cannot use; the message says why (that LMS's file is not written)."""


class UploadError(KitError):
    """The grades were not (all) uploaded to the LMS; the message says why."""


class EvidenceMissing(KitError):
    """The notebook did not get far enough to leave evidence (or left malformed evidence)."""
