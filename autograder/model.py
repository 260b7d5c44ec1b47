"""The kit's result model: one status enum and the typed results every part passes on.

- ``Status``: every outcome a student's line can have, from the sandbox's run
  statuses through intake problems to what a batch did. Each member carries
  what each reader is told: ``student`` (the graded notebook and feedback),
  ``instructor`` (command line, batch table, class report) and ``gradescope``
  (the ``output`` of Gradescope's results.json).
- ``CheckResult``: one hidden check's record, as the check process writes it.
- ``RunOutcome``: what the sandbox reports about one notebook run.
- ``GradingResult``: one graded submission (run + checks), what the engine
  returns and the result store keeps.
- ``Summary``: one student's line in ``.kit/results``, what exports, the class
  report and rechecks read.

Results and summaries are stored as JSON (``to_dict`` / ``from_dict``) under
fixed keys, so that every stored file reads back: keys the model does not know
are ignored, and the fields a file may lack have defaults.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum

RESULT_VERSION = 1

RUN, INTAKE, BATCH = "run", "intake", "batch"


class Status(StrEnum):
    """A student's status; the value is what the JSON files hold."""

    def __new__(cls, value: str, kind: str, instructor: str, student: str = ""):
        member = str.__new__(cls, value)
        member._value_ = value
        member.kind = kind
        member.instructor = instructor
        member.student = student
        return member

    @property
    def gradescope(self) -> str:
        """The sentence Gradescope shows the student on top of the check results."""
        return f"{self.student}." if self.student else ""

    @classmethod
    def of_run(cls, value) -> Status:
        """A run status reported by the sandbox's payload; anything else is an error."""
        try:
            status = cls(str(value))
        except ValueError:
            return cls.ERROR
        return status if status.kind == RUN else cls.ERROR

    # how the notebook run ended (the sandbox)
    OK = "ok", RUN, "ran to the end", "Your notebook ran to the end"
    CELL_TIMEOUT = "cell_timeout", RUN, "cell timed out", "A cell of your notebook was stopped at its time limit"
    TIMEOUT = "timeout", RUN, "timed out", "Your notebook did not finish in time"
    OUT_OF_MEMORY = "out_of_memory", RUN, "out of memory", "Your notebook used too much memory"
    TOO_MUCH_OUTPUT = "too_much_output", RUN, "too much output", "Your notebook printed too much output"
    TOO_MANY_PROCESSES = "too_many_processes", RUN, "too many processes", "Your notebook started too many processes"
    TOO_MUCH_DISK = "too_much_disk", RUN, "wrote too much to disk", "Your notebook wrote too much to disk"
    KERNEL_DIED = "kernel_died", RUN, "kernel died", "Your notebook's Python kernel died"
    NO_OUTPUT = "no_output", RUN, "could not be run", "Your notebook could not be run"
    ERROR = "error", RUN, "could not be run", "Your notebook could not be run"
    # what came in (intake): only OK goes on to grading
    NO_SUBMISSION = "no_submission", INTAKE, "no submission", "No submission was found"
    WRONG_NAME = "wrong_name", INTAKE, "wrong file name", "No notebook with the expected file name was found"
    EMPTY = "empty", INTAKE, "empty notebook", "The submitted notebook is empty"
    UNREADABLE = "unreadable", INTAKE, "corrupt notebook", "The submitted notebook file is corrupt and cannot be opened"
    INVALID = "invalid", INTAKE, "rejected by nbgrader", "The submitted notebook's grading cells are damaged"
    # what a batch did with a student
    GRADED = "graded", BATCH, "graded"
    UP_TO_DATE = "up to date", BATCH, "up to date"
    RECHECKED = "rechecked", BATCH, "rechecked"
    NOT_RECHECKED = "not rechecked", BATCH, "not rechecked"
    UNKNOWN_STUDENT = "unknown student", BATCH, "unknown student"
    AUTOGRADE_FAILED = "autograde failed", BATCH, "autograde failed"
    GRADER_ERROR = (
        "grader error",
        BATCH,
        "grader error",
        "The grader failed on this submission; your instructor will look at it",
    )


@dataclass
class CheckResult:
    """One hidden check of one submission (``autograder/grading/checks/conftest.py`` writes these)."""

    id: str
    cell: str  # grade_id of the test cell it scores
    name: str
    points: float
    passed: bool
    score: float
    message: str = ""  # shown to the student when it fails
    values: dict = field(default_factory=dict)  # figures it measured (instructor only)
    detail: str = ""  # an unexpected grader error's text (instructor only)

    @classmethod
    def from_dict(cls, data: dict) -> CheckResult:
        return cls(**_known(cls, data))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class RunOutcome:
    """How the sandboxed run of one notebook ended."""

    status: Status
    message: str = ""
    sandboxed: bool = True
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    capture_errors: list = field(default_factory=list)
    cpu_seconds: float | None = None  # CPU time of the whole run (its cgroup), where the host counts it
    cpu_threads: int = 1  # CPU threads the run had
    limits_by: str = ""  # what enforced memory and processes: "v2" / "v1" cgroup, or "watchdog"


@dataclass
class GradingResult:
    """One graded submission: how its run ended, its executed notebook, every check's record."""

    status: Status
    message: str
    sandboxed: bool
    seconds: float  # the whole grading: run and checks
    execute_seconds: float
    check_seconds: float
    peak_rss_mb: float
    executed: str | None  # the executed notebook (JSON text), None if the run left none
    checks: list[CheckResult]
    capture_errors: list = field(default_factory=list)
    cpu_seconds: float | None = None  # CPU time of the sandboxed run (RunOutcome)
    cpu_threads: int = 1
    limits_by: str = ""  # as RunOutcome's ("": not recorded)
    code: str | None = None  # digest of the code as written that ran (grading.identical)
    graded_for: str | None = None  # the student whose notebook ran
    rechecked: list = field(default_factory=list)  # {"check", "job"} per check run again on kept evidence
    evidence: dict[str, bytes] | None = None  # the files the checks read; stored beside, not in the JSON
    partial: bool = False  # the run ended early; checked on the evidence recorded before (a checkpoint)
    version: int = RESULT_VERSION

    @classmethod
    def of_run(
        cls,
        outcome: RunOutcome,
        executed: str | None,
        checks: list[CheckResult],
        check_seconds: float,
        seconds: float,
        evidence: dict[str, bytes],
        partial: bool = False,
    ) -> GradingResult:
        return cls(
            status=outcome.status,
            message=outcome.message,
            sandboxed=outcome.sandboxed,
            seconds=seconds,
            execute_seconds=outcome.seconds,
            check_seconds=check_seconds,
            peak_rss_mb=outcome.peak_rss_mb,
            executed=executed,
            checks=checks,
            capture_errors=outcome.capture_errors,
            evidence=evidence,
            cpu_seconds=outcome.cpu_seconds,
            cpu_threads=outcome.cpu_threads,
            limits_by=outcome.limits_by,
            partial=partial,
        )

    @property
    def score(self) -> float:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)

    def check(self, check_id: str) -> CheckResult | None:
        return next((c for c in self.checks if c.id == check_id), None)

    def with_check(self, fresh: CheckResult, job_digest: str, evidence: dict[str, bytes]) -> GradingResult:
        """This result with one check's record replaced by ``fresh`` (run again on the kept evidence)."""
        checks = [fresh if c.id == fresh.id else c for c in self.checks]
        if fresh.id not in {c.id for c in self.checks}:
            checks.append(fresh)
        return replace(
            self,
            checks=checks,
            evidence=evidence,
            rechecked=[*self.rechecked, {"check": fresh.id, "job": job_digest[:16]}],
        )

    def to_dict(self) -> dict:
        """The JSON form (without the evidence files)."""
        data = asdict(replace(self, evidence=None, checks=[]))
        data.pop("evidence")
        data["checks"] = [c.to_dict() for c in self.checks]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GradingResult:
        known = _known(cls, data)
        known["status"] = Status(known["status"])
        known["checks"] = [CheckResult.from_dict(c) for c in data.get("checks", [])]
        known.pop("evidence", None)
        return cls(**known)


# Figures the checks record (``record_property``) that the summaries and the class report keep.
METRIC_NAMES = {
    "reported_val_auc": "val_auc_reported",
    "val_auc": "val_auc_regraded",
    "hidden_auc": "hidden_auc",
    "honesty_gap": "honesty_gap",
}


def check_metrics(checks: list[CheckResult]) -> dict:
    """Reported and re-evaluated model figures, gathered from the checks' values."""
    metrics = {}
    for check in checks:
        for name, value in (check.values or {}).items():
            if name in METRIC_NAMES and isinstance(value, (int, float)):
                metrics.setdefault(METRIC_NAMES[name], float(value))
    return metrics


PARTIAL_NOTE = "graded on the work recorded before the run ended"  # shown next to the status of a partial result
# Shown wherever the status of a run whose memory and processes only a watchdog watched (Sandbox.cgroups = off):
# it could use memory no watchdog sees (tmpfs, memfd, shared memory) and widen its CPUs.
UNENFORCED_NOTE = "limits not enforced (Sandbox.cgroups=off)"


def limits_unenforced(sandboxed: bool | None, limits_by: str | None) -> bool:
    """A sandboxed run whose limits only the watchdog kept (None: a stored result that does not say)."""
    return bool(sandboxed) and limits_by == "watchdog"


# The settings a run's time limits come from, named in what the instructor and the student read.
CELL_LIMIT, NOTEBOOK_LIMIT = "Sandbox.cell_timeout", "Sandbox.notebook_timeout"


def cell_label(cell: dict, index: int) -> str:
    """How the kit names a notebook's cell: its nbgrader grade_id, else "cell N" (N = index + 1).

    grade_ids come from the gradebook (nbgrader's OverwriteCells drops any it
    does not know), but a label is still shown as data, escaped where rendered.
    """
    grade_id = ((cell.get("metadata") or {}).get("nbgrader") or {}).get("grade_id")
    return str(grade_id)[:100] if grade_id else f"cell {index + 1}"


def cells_timed_out(labels: list[str], seconds: int) -> str:
    """Cells interrupted at the cell timeout, e.g. "cell `compile` stopped after 600 s (Sandbox.cell_timeout)"."""
    if len(labels) == 1:
        return f"cell `{labels[0]}` stopped after {seconds} s ({CELL_LIMIT})"
    return f"cells {', '.join(f'`{label}`' for label in labels)} stopped after {seconds} s each ({CELL_LIMIT})"


def while_running(label: str) -> str:
    """What is added to how a run ended early: the cell that was running."""
    return f"while cell `{label}` was running"


def cell_errors(executed_json: str | None) -> list[dict]:
    """Cells of the executed notebook that raised: which cell, which exception, test cell or not."""
    if not executed_json:
        return []
    try:
        cells = json.loads(executed_json).get("cells", [])
    except (ValueError, AttributeError):
        return []
    found = []
    for index, cell in enumerate(cells):
        meta = (cell.get("metadata") or {}).get("nbgrader") or {}
        for output in cell.get("outputs") or []:
            if output.get("output_type") == "error":
                found.append(
                    {
                        "cell": cell_label(cell, index),
                        "ename": str(output.get("ename"))[:100],
                        "test": bool(meta.get("grade") and not meta.get("solution")),
                    }
                )
                break
    return found[:50]


@dataclass
class Summary:
    """One student's graded line: no notebook, just what exports, the report and rechecks need."""

    status: Status
    message: str = ""
    key: str | None = None  # the result store key it was graded under (None: nothing ran)
    submission: str | None = None  # digest of the notebook and files, whatever the job
    sandboxed: bool | None = None
    seconds: float = 0.0
    execute_seconds: float = 0.0
    check_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    score: float = 0.0
    max_score: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    cell_errors: list = field(default_factory=list)
    rechecked: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    code_group: str | None = None  # students with the same value ran identical code (grading.identical)
    reused_from: str | None = None  # the classmate whose run graded this identical code, if not this student
    partial: bool = False  # graded on the work recorded before the run ended (GradingResult.partial)
    limits_by: str | None = None  # what enforced the run's memory and processes (RunOutcome.limits_by)
    gradebook_key: str | None = None  # set once nbgrader's autograde wrote this key's grades
    autograded_at: str | None = None

    @classmethod
    def of_result(
        cls, result: GradingResult, key: str, submission: str, code_group: str | None = None, student: str | None = None
    ) -> Summary:
        reused = result.graded_for if result.graded_for and student and result.graded_for != student else None
        return cls(
            status=result.status,
            message=result.message,
            key=key,
            submission=submission,
            code_group=code_group,
            reused_from=reused,
            sandboxed=result.sandboxed,
            seconds=result.seconds,
            execute_seconds=result.execute_seconds,
            check_seconds=result.check_seconds,
            peak_rss_mb=result.peak_rss_mb,
            score=result.score,
            max_score=result.max_score,
            checks=list(result.checks),
            metrics=check_metrics(result.checks),
            cell_errors=cell_errors(result.executed),
            rechecked=list(result.rechecked),
            partial=result.partial,
            limits_by=result.limits_by,
        )

    @classmethod
    def not_graded(cls, status: Status, message: str, max_score: float, notes: list[str]) -> Summary:
        """A student without a gradable notebook: score 0, nothing ran."""
        return cls(status=status, message=message, max_score=max_score, notes=list(notes))

    @property
    def graded(self) -> bool:
        return self.key is not None

    def to_dict(self) -> dict:
        data = asdict(replace(self, checks=[]))
        data["checks"] = [c.to_dict() for c in self.checks]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Summary:
        known = _known(cls, data)
        known["status"] = Status(known["status"])
        known["checks"] = [CheckResult.from_dict(c) for c in data.get("checks") or []]
        for name in ("metrics", "cell_errors", "rechecked", "notes"):
            if known.get(name) is None:
                known.pop(name, None)
        return cls(**known)


def _known(cls, data: dict) -> dict:
    """The entries of ``data`` that are fields of ``cls`` (files may hold more, e.g. the store's bookkeeping)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
