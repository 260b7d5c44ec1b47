"""Grade a whole class: the expensive part on Dask, the gradebook through nbgrader.

There is one path from submission to grade, nbgrader's ``autograde`` with
the kit's ``GradeSubmission`` in place of ``Execute``. What makes it slow,
``engine.grade_notebook`` (sandboxed run + hidden checks), is plain data in,
data out. So a batch:

1. takes stock of the submissions (``intake.inventory``): a student without
   a usable notebook gets a clear result instead of stopping the batch;
2. sanitizes each notebook exactly as ``Autograde`` will (nbgrader's own
   sanitize preprocessors, same resources) and keys it with the same
   ``prepare_submission`` that ``GradeSubmission`` calls (``prepare.py``);
3. sends what is not yet in the ``ResultStore`` to Dask workers (a local
   cluster, or a scheduler's address), shipping the ``GradingJob`` once
   (scattered) and each notebook as data, so workers need no course files;
4. as each result lands, stores it (atomic file) and has the
   ``GradebookWriter`` run nbgrader's autograde for that student in this
   process, serially, handing it the same job: GradeSubmission finds the
   result in the store, and nbgrader writes the gradebook.

A batch killed at any point loses at most the submissions in flight; run it
again and it grades what is left. A student's gradebook entry is marked done
(``gradebook_key`` in the summary) only after nbgrader's autograde returned,
and a submission whose key is unchanged is not run again unless forced.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Protocol

from nbgrader.api import MissingEntry

from ..errors import BatchError
from ..grading import engine
from ..model import Status
from ..settings import Batch
from .gradebook import GradebookWriter, Row
from .prepare import Prepared, Sanitizer


class Progress(Protocol):
    """What a batch reports its progress to (the command line draws a bar)."""

    def start(self, total: int, text: str) -> None: ...

    def advance(self) -> None: ...


class NoProgress:
    def start(self, total: int, text: str) -> None:
        pass

    def advance(self) -> None:
        pass


# --- Dask ----------------------------------------------------------------------

def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def dask_client(settings: Batch, n_tasks: int, scheduler: str = "", n_workers: int = 0):
    """A Dask client: on ``scheduler`` (or Batch.scheduler_address), else a local cluster."""
    from distributed import Client, LocalCluster

    address = scheduler or settings.scheduler_address
    if address:
        with Client(address) as client:
            yield client
        return
    workers = n_workers or settings.n_workers or default_workers()
    workers = max(1, min(workers, n_tasks))
    with LocalCluster(n_workers=workers, threads_per_worker=settings.threads_per_worker, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


# --- the batch -----------------------------------------------------------------

class BatchGrader:
    """Grade all (or some) students of the course's assignment."""

    def __init__(self, course, progress: Progress | None = None):
        self.course = course
        self.progress = progress or NoProgress()
        self.writer = GradebookWriter(course)

    def grade(self, students: list[str] | None = None, force: bool = False, scheduler: str = "",
              n_workers: int = 0) -> list[Row]:
        with self.course.lock():
            return self._grade(students, force, scheduler, n_workers)

    def _grade(self, students, force, scheduler, n_workers) -> list[Row]:
        course = self.course
        with course.gradebook() as gb:
            try:
                gb.find_assignment(course.assignment)
            except MissingEntry:
                raise BatchError(f"{course.assignment} is not in the gradebook yet: run `spamkit release` first") from None
        entries = course.entries(students)
        self.progress.start(len(entries), f"Grading {course.assignment}")
        rows: dict[str, Row] = {}
        prepared: list[Prepared] = []
        sanitizer = Sanitizer(course)
        for entry in entries:
            if entry.status == Status.OK:
                try:
                    prepared.append(sanitizer.prepare(entry))
                    continue
                except Exception as exc:  # noqa: BLE001 - nbgrader rejects the notebook: report, go on
                    rows[entry.student] = self.writer.not_graded(
                        entry.student, Status.INVALID,
                        f"nbgrader cannot sanitize it: {type(exc).__name__}: {exc}"[:500], entry.notes)
            elif entry.status == Status.UNKNOWN_STUDENT:  # a typo in --student must not add a student to the gradebook
                rows[entry.student] = Row(entry.student, Status.UNKNOWN_STUDENT, message=entry.message)
            else:
                rows[entry.student] = self.writer.not_graded(entry.student, entry.status, entry.message, entry.notes)
            self.progress.advance()

        pending = [p for p in prepared if force or course.store.get(p.key) is None]
        for p in prepared:
            if not any(p is q for q in pending):
                rows[p.student] = self.writer.write(p, force=force, executed=False)
                self.progress.advance()
        if pending:
            self._run_on_dask(pending, rows, scheduler, n_workers)
        return [rows[s] for s in sorted(rows)]

    def _run_on_dask(self, pending: list[Prepared], rows: dict, scheduler: str, n_workers: int) -> None:
        from distributed import as_completed

        course = self.course
        job = course.job()
        with dask_client(Batch(config=course.config), len(pending), scheduler, n_workers) as client:
            job_future = client.scatter(job, broadcast=True)
            futures = {}
            for p in pending:
                future = client.submit(engine.grade_notebook, p.submission.nb_json, p.submission.files, job_future,
                                       course.notebook, key=f"grade-{p.student}-{p.key[:16]}", pure=False)
                futures[future] = p
                course.log_event("submitted", student=p.student, key=p.key)
            for future in as_completed(futures):
                p = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - one failure must not stop the batch
                    course.log_event("failed", student=p.student, key=p.key, error=repr(exc)[:500])
                    rows[p.student] = self.writer.not_graded(p.student, Status.GRADER_ERROR,
                                                             f"{type(exc).__name__}: {exc}"[:500], p.notes)
                else:
                    course.store.put(p.key, result)
                    worker = next(iter(client.who_has([future]).get(future.key, ())), None)
                    course.log_event("executed", student=p.student, key=p.key, seconds=result.seconds, worker=worker)
                    rows[p.student] = self.writer.write(p, force=True, executed=True)
                finally:
                    future.release()
                self.progress.advance()
