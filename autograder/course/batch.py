"""Grade a whole class: the expensive part on Dask, the gradebook through nbgrader.

There is one path from submission to grade, nbgrader's ``autograde`` with
the kit's ``GradeSubmission`` in place of ``Execute``. What makes it slow,
``engine.grade_notebook`` (sandboxed run + hidden checks), is plain data in,
data out. So a batch:

1. takes stock of the submissions (``intake.inventory``): a student without
   a usable notebook gets a clear result instead of stopping the batch;
2. sanitizes each notebook exactly as ``Autograde`` does (nbgrader's own
   sanitize preprocessors, same resources) and keys it with the same
   ``prepare_submission`` that ``GradeSubmission`` calls (``prepare.py``),
   each sent to Dask as soon as it is ready (the local cluster starts
   meanwhile); a large class is prepared in processes of its own
   (``BatchClient.prepare_processes``) while this one writes grades;
3. runs identical code once (``grading/identical.py``): a student whose code
   is a classmate's, comments and blank lines aside, waits for that run and
   is graded from it (unless the run's outputs print source and the text
   differs: then they get a run of their own);
4. grades each remaining submission in two Dask tasks (``grading/tasks.py``):
   ``engine.run_in_sandbox``, then ``engine.check_run``. On the local cluster
   the sandboxes run on the sandbox workers (resource ``sandbox``) and the
   checks on a check worker (resource ``check``), all threads of this
   process: they start processes and wait. The check worker's warm check
   process starts with the batch; a worker's next sandbox starts while the
   checks of its last one run, and the class pays
   TensorFlow's start-up for the checks once. On a cluster
   (``Batch.scheduler_address``, ``--scheduler``, or ``Batch.cluster``) the
   tasks go only to workers vetted for the job (``cluster.py``): the client's
   grading code, a sandbox they can make. The GradingJob is scattered once and each notebook travels as
   data, so workers need no course files;
5. as each result lands, stores it (atomic file) and has the
   ``GradebookWriter`` run nbgrader's autograde steps for that student in
   this process on the prepared notebook (sanitized once), in one gradebook
   session for the batch (``gradebook_session.py``): GradeSubmission finds
   the result in the store, and nbgrader's SaveAutoGrades writes the grades.
   The session commits every few students, and whenever the batch waits.

A batch killed at any point loses at most the submissions in flight and the
grades not yet committed; run it again and it grades what is left. A
student's gradebook entry is marked done (``gradebook_key`` in the summary)
only after the transaction with their grades committed, and a submission
whose key is unchanged is not run again unless forced.

The CPU threads of each sandbox follow from how many run at once (the local
workers; see ``GradingJob``): ``course.grade_with`` fixes them before any key
is computed.
"""

from __future__ import annotations

import contextlib
import logging
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from nbgrader.api import MissingEntry

from ..errors import BatchError
from ..grading import check_process, engine, tasks
from ..grading.job import remove_job_dirs
from ..internals.distributed import add_workers_with_resources
from ..model import Status
from ..sandbox import sandbox_here
from ..settings import Batch, Sandbox, local_workers, machine_cores
from .cluster import external_client, open_gate
from .gradebook import BatchClient, GradebookWriter, Row
from .prepare import Prepared, Sanitizer, prepare_in_processes, prepare_one
from .progress import NoProgress, Progress
from .schema_cache import cache_schema_checks

# --- Dask ----------------------------------------------------------------------

# Dask's own periodic work, at rates for a few long tasks instead of many short ones: no statistical
# profiler (10 ms), no work stealing, event-loop and system monitors once a second or less.
QUIET_DASK = {
    "distributed.worker.profile.enabled": False,
    "distributed.scheduler.work-stealing": False,
    "distributed.scheduler.active-memory-manager.start": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.admin.system-monitor.disk": False,
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.client.scheduler-info-interval": "10s",
    "distributed.deploy.cluster-repr-interval": "10s",
}
SANDBOX, CHECK = "sandbox", "check"  # worker resources of the local cluster


def check_workers(settings: Batch, sandbox_workers: int) -> int:
    """Check workers of a local cluster: Batch.check_workers, else one per four sandbox workers."""
    return settings.check_workers or math.ceil(sandbox_workers / 4)


def dask_client(
    stack: contextlib.ExitStack,
    settings: Batch,
    scheduler: str = "",
    n_workers: int = 0,
    at_most: int | None = None,
    course_root=None,
):
    """A Dask client and how many workers of our local cluster it waits for (0: not ours): on ``scheduler``
    (or Batch.scheduler_address), or on the cluster Batch.cluster makes (``cluster.py``), else a local cluster
    of sandbox workers (no more than ``at_most`` notebooks need) and check workers. ``stack`` closes them.

    Made without ``with Client(...)``, so that it can be started in one thread and used in another.
    """
    import dask
    from distributed import Client, LocalCluster

    address = scheduler or settings.scheduler_address
    if address or settings.cluster:
        return external_client(stack, address, settings.cluster, course_root), 0
    workers = max(1, min(local_workers(settings, n_workers), at_most or math.inf))
    stack.enter_context(dask.config.set(QUIET_DASK))
    cluster = LocalCluster(
        n_workers=0,
        threads_per_worker=settings.threads_per_worker,
        processes=False,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    stack.callback(cluster.close)
    # Every worker of the local cluster is threads of this process. A worker only starts a sandbox (or hands
    # files to its warm check process) and waits: the student's code runs in the sandbox's own processes, and
    # worker processes would only add a Python start-up each (seconds before the first notebook can start).
    checkers = check_workers(settings, workers)
    add_workers_with_resources(cluster, {"sandbox": (workers, {SANDBOX: 1}), "checks": (checkers, {CHECK: 1})})
    client = Client(cluster, set_as_default=False)
    stack.callback(client.close)
    return client, workers + checkers


# --- the batch -----------------------------------------------------------------


@dataclass
class Run:
    """One run in flight on Dask, and the students waiting to be graded from it."""

    student: Prepared
    waiting: list[Prepared] = field(default_factory=list)  # identical code (normalised), decided when it lands


class BatchGrader:
    """Grade all (or some) students of the course's assignment."""

    def __init__(self, course, progress: Progress | None = None):
        self.course = course
        self.progress = progress or NoProgress()
        self.writer = GradebookWriter(course)
        cache_schema_checks()  # the client's time per student is the batch's limit on a cluster

    def grade(
        self, students: list[str] | None = None, force: bool = False, scheduler: str = "", n_workers: int = 0
    ) -> list[Row]:
        with self.course.lock():
            return self._grade(students, force, scheduler, n_workers)

    def _grade(self, students, force, scheduler, n_workers) -> list[Row]:
        course = self.course
        settings = Batch(config=course.config)
        external = bool(scheduler or settings.scheduler_address or settings.cluster)
        # Each sandbox's CPU threads (and so the job and every key) follow from how many run at once.
        course.grade_with(machine_cores() if external else local_workers(settings, n_workers))
        with course.gradebook() as gb:
            try:
                gb.find_assignment(course.assignment)
            except MissingEntry:
                raise BatchError(
                    f"{course.assignment} is not in the gradebook yet: run `spamkit release` first"
                ) from None
        job = course.job()  # the data and the given code, once for the class: if they fail, nobody is graded
        if not external:  # the sandbox (bubblewrap, cgroup rights, the seccomp filter) too, on this machine
            sandbox_here(Sandbox(**job.sandbox))
        entries = course.entries(students)
        self.progress.start(len(entries), f"Grading {course.assignment}")
        self.rows: dict[str, Row] = {}
        self.force = force
        ready = [e for e in entries if e.status == Status.OK]
        preparers = BatchClient(config=course.config).preparers(len(ready), machine_cores())
        course.log_event("batch", students=len(entries), notebooks=len(ready), preparers=preparers)
        with self.writer.session() as gradebook:  # one gradebook session, committed as the batch goes
            pipeline = DaskPipeline(self, settings, scheduler, n_workers, at_most=len(ready))
            try:
                for entry in entries:
                    if entry.status != Status.OK:
                        self._not_gradable(entry)
                if preparers:
                    prepared = prepare_in_processes(course, job, ready, preparers)
                else:
                    sanitizer = Sanitizer(course, gradebook, job)
                    prepared = (prepare_one(sanitizer, entry) for entry in ready)
                for outcome in prepared:
                    self._take(*outcome, pipeline)
                pipeline.drain()
            finally:
                pipeline.close()
        for student, why in self.writer.failed.items():  # a step after the commit failed: not marked done
            self.rows[student] = Row(student, Status.AUTOGRADE_FAILED, message=why, notes=self.rows[student].notes)
        return [self.rows[s] for s in sorted(self.rows)]

    def _not_gradable(self, entry) -> None:
        if entry.status == Status.UNKNOWN_STUDENT:  # a typo in --student must not add a student
            self.rows[entry.student] = Row(entry.student, Status.UNKNOWN_STUDENT, message=entry.message)
        else:
            self.rows[entry.student] = self.writer.not_graded(entry.student, entry.status, entry.message, entry.notes)
        self.progress.advance()

    def _take(self, entry, p: Prepared | None, error: str, seconds: float, pipeline: DaskPipeline) -> None:
        """A prepared submission dispatched, or one nbgrader rejected recorded."""
        if p is None:
            self.rows[entry.student] = self.writer.not_graded(
                entry.student, Status.INVALID, f"nbgrader cannot sanitize it: {error}"[:500], entry.notes
            )
            self.progress.advance()
            return
        self.course.log_event("prepared", student=p.student, key=p.key, seconds=round(seconds, 4))
        self._dispatch(p, pipeline)

    def _dispatch(self, p: Prepared, pipeline: DaskPipeline) -> None:
        """Grade ``p`` from the store, wait for a run of identical code, or send it to Dask."""
        key, stored = self.course.store.find(p.submission)
        if stored is not None and not self.force:
            self._write(p, key, executed=False, force=False)
            return
        run = pipeline.runs.get(p.key)
        if run is not None:  # a classmate's identical code is on its way
            run.waiting.append(p)
            return
        pipeline.submit(p)

    def _write(self, p: Prepared, key: str, *, executed: bool, force: bool = True) -> None:
        self.rows[p.student] = self.writer.write(p, force=force, executed=executed, key=key)
        self.progress.advance()

    def landed(self, run: Run, result, pipeline: DaskPipeline) -> None:
        """A run's result: store it, write its student's grade, then those of its identical-code classmates."""
        course, p = self.course, run.student
        result.code, result.graded_for = p.submission.code, p.student
        key = course.store.place(p.submission)
        course.store.put(key, result)
        course.log_event("executed", student=p.student, key=key, seconds=result.seconds, worker=pipeline.worker_of(p))
        self._write(p, key, executed=True)
        for other in run.waiting:
            other_key, stored = course.store.find(other.submission)
            if stored is None:  # its text differs and the run printed source: a run of its own
                self._dispatch(other, pipeline)
                continue
            course.log_event("reused", student=other.student, key=other_key, run_of=p.student)
            self._write(other, other_key, executed=False)

    def failed(self, run: Run, exc: BaseException, pipeline: DaskPipeline) -> None:
        p = run.student
        self.course.log_event("failed", student=p.student, key=p.key, error=repr(exc)[:500])
        self.rows[p.student] = self.writer.not_graded(
            p.student, Status.GRADER_ERROR, f"{type(exc).__name__}: {exc}"[:500], p.notes
        )
        self.progress.advance()
        if run.waiting:  # the next of the group gets its own try
            first, *rest = run.waiting
            pipeline.submit(first)
            pipeline.runs[first.key].waiting.extend(rest)


class DaskPipeline:
    """The runs of one batch on Dask: started lazily, submitted as they come, collected as they land."""

    def __init__(self, grader: BatchGrader, settings: Batch, scheduler: str, n_workers: int, at_most: int):
        self.grader = grader
        self.settings, self.scheduler, self.n_workers, self.at_most = settings, scheduler, n_workers, at_most
        self.runs: dict[str, Run] = {}  # normalised key -> run in flight
        self._by_future: dict = {}
        self._queue: list[Prepared] = []
        self._starting = None
        self._pool: ThreadPoolExecutor | None = None
        self._stack = contextlib.ExitStack()
        self.client = None
        self.local = False
        self._completed = None
        self._workers: dict[str, str | None] = {}  # normalised key -> the worker that ran it

    # --- starting ----------------------------------------------------------------------------
    def _start(self):
        course = self.grader.course
        client, local = dask_client(
            self._stack, self.settings, self.scheduler, self.n_workers, self.at_most, course.root
        )
        if local:
            client.wait_for_workers(local)
            job_future = client.scatter(course.job(), broadcast=True)
            # the check worker gets its warm check process ready while the first notebooks run
            client.submit(
                engine.warm_checks, job_future, resources={CHECK: 1}, pure=False, priority=100, key="warm-checks"
            )
            return client, job_future, {SANDBOX: 1}, {CHECK: 1}
        # Workers this client never saw: only those vetted for the job get its tasks (and its data).
        gate, reports = open_gate(client, course.job())
        for address, report in reports.items():
            pending, report = report is None, report or {"refused": ""}  # pending: gets notebooks once it passes
            course.log_event(
                "worker",
                address=address,
                pending=pending,
                refused=report["refused"],
                sandbox=report.get("sandbox"),
                cgroups=report.get("cgroups"),
                kit_version=report.get("kit_version"),
                grading_code=(report.get("grading_code") or "")[:16],
            )
        vetted = [address for address, report in reports.items() if report and not report["refused"]]
        job_future = client.scatter(course.job(), workers=vetted, broadcast=True)
        return client, job_future, {gate: 1}, {gate: 1}

    def submit(self, p: Prepared) -> None:
        self.runs[p.key] = Run(p)
        self._queue.append(p)
        if self._starting is None:  # the cluster starts while the next notebooks are prepared
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="spamkit-dask-start")
            self._starting = self._pool.submit(self._start)
        if self._starting.done():
            self._flush()

    def _flush(self) -> None:
        from distributed import as_completed

        if self.client is None:
            self.client, self.job, self._run_resources, self._check_resources = self._starting.result()
            self.local = SANDBOX in self._run_resources
            self._completed = as_completed(loop=self.client.loop)
        course = self.grader.course
        for p in self._queue:
            ran = self.client.submit(
                tasks.run,
                p.submission.nb_json,
                p.submission.files,
                self.job,
                course.notebook,
                key=f"run-{p.student}-{p.key[:16]}",
                pure=False,
                resources=self._run_resources,
            )
            checked = self.client.submit(
                tasks.check,
                ran,
                self.job,
                key=f"check-{p.student}-{p.key[:16]}",
                pure=False,
                resources=self._check_resources,
                priority=10,
            )
            self._by_future[checked] = (self.runs[p.key], ran)
            self._completed.add(checked)
            course.log_event("submitted", student=p.student, key=p.key)
        self._queue.clear()

    def worker_of(self, p: Prepared) -> str | None:
        return self._workers.get(p.key)

    # --- collecting ----------------------------------------------------------------------------
    def drain(self) -> None:
        """Collect every run as it lands (more may be submitted meanwhile: classmates who need their own)."""
        if self._starting is None:
            return
        self._flush()
        while self._by_future:
            if not self._completed.has_ready():  # the client would wait: what it wrote goes into the gradebook now
                self.grader.writer.commit()
            future = next(self._completed)
            run, ran = self._by_future.pop(future)
            key = run.student.key
            try:
                result, self._workers[key] = future.result()
            except Exception as exc:  # noqa: BLE001 - one failure must not stop the batch
                self.runs.pop(key, None)
                self.grader.failed(run, exc, self)
            else:
                self.runs.pop(key, None)
                self.grader.landed(run, result, self)
            finally:
                future.release()
                ran.release()
            if self._queue:
                self._flush()

    def close(self) -> None:
        if self._starting is not None and not self._starting.done():
            with contextlib.suppress(Exception):
                self._starting.result()
        self._stack.close()
        if self._pool is not None:
            self._pool.shutdown()
        if self.local:  # the local check workers were threads of this process: their check process goes too
            check_process.close_warm()
        remove_job_dirs()  # the hidden test split does not outlast the batch
