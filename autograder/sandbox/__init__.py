"""Run the notebook runner isolated from the course, with limits.

Student code runs in the payload (``payload/runner.py``: nbgrader's Execute
plus the evidence capture of ``payload/capture.py``) inside bubblewrap. The
package's parts, in the order a run uses them:

- ``host``: which way sandboxes can be made here (probed once per process);
- ``spec``: one run decided in one pass (uid, CPUs, rlimits, environment, files, sizes);
- ``bwrap``: the spec as a command line, and the filesystem view student code gets;
- ``seccomp``: the system calls no notebook may make;
- ``cgroups``, ``limits``: the kernel's limits, and the watchdog;
- ``channel``: the results, sent by the runner over a pipe and read as data;
- ``collect``: the runner's report and progress, read as data;
- ``cells``: how the run ended, told with the cell running and the cells timed out.

The payload never imports the kit: everything it needs (timeouts, output
cap, where the capture writes, the grader's plot history) is passed to it as
one JSON argument. What crosses back is data only.

Limits and what enforces them (all reported per student; the batch goes on):

=====================  ==============================================================
notebook_timeout       wall clock of the watchdog: kill, status ``timeout``, the
                       cell then running named (the runner's progress file)
cell_timeout           nbclient (nbgrader Execute, interrupt_on_timeout): the cell
                       gets a ``CellTimeout`` error naming it and the limit, and the
                       run goes on: status ``cell_timeout``; a kernel that ignores
                       the interrupt ends the run with status ``timeout``
memory_mb              the run's cgroup (memory.max / memory.limit_in_bytes): the
                       kernel's OOM killer acts at the limit, its event wakes the
                       watchdog, which kills the run: status ``out_of_memory``.
                       Without a cgroup: the watchdog's look at the resident
                       memory of the whole process tree (PSS when RSS over-counts
                       shared pages, e.g. after fork). Either way RLIMIT_DATA of
                       1.5 x memory_mb per process (prlimit) makes a single huge
                       allocation fail at once with MemoryError. RLIMIT_AS is not
                       used: TensorFlow reserves far more address space than it
                       uses (reference run: VmPeak 2.3 GB, VmData 0.63 GB, RSS 0.7 GB).
max_processes          the run's cgroup (pids.max: fork() fails past it; a refused
                       fork shows in pids.events) and RLIMIT_NPROC (prlimit) for
                       the sandbox's own uid / user namespace; the watchdog kills
                       a run that hit it (without a cgroup: that reaches it in
                       its look at /proc): status ``too_many_processes``
max_output_bytes       runner.py: outputs past it are dropped while the kernel
                       runs (a marker says so), and at 10 x the kernel is killed:
                       status ``too_much_output``; the executed notebook is
                       size-checked again before the grader reads it
disk_mb                the home is a tmpfs of that size (spec.py), /tmp and
                       /dev/shm of TMPFS_MB each: the kernel refuses writes past
                       them (unlinked and O_TMPFILE files included), their pages
                       count as the run's memory, and the watchdog ends a run that
                       filled one (statvfs once a second): status ``too_much_disk``.
                       RLIMIT_FSIZE per file. Without a sandbox: the watchdog's
                       walk of the scratch folder
max_open_files         RLIMIT_NOFILE (prlimit)
system calls           a seccomp filter (seccomp.py): new namespaces, mounts, the
                       keyring, bpf, io_uring, userfaultfd, ptrace, ... fail with EPERM
cpu_threads            the run's cgroup: cpuset of the slot's CPUs (the run cannot
                       widen its affinity) and a CPU quota of that many cores;
                       ``taskset`` pins the tree to them too (one slot per
                       concurrent sandbox) + OMP/BLAS/TF thread variables. 0 in
                       the course config: the cores shared among the sandboxes
                       that run at once, fixed in the GradingJob
network                a new, empty network namespace (loopback only)
=====================  ==============================================================

Without cgroup rights nothing is graded (``host.limit_cgroups`` raises
``SandboxUnavailable``). With ``Sandbox.cgroups = "off"`` the watchdog polls
memory and processes from /proc instead, often near a limit and twice a
second far from one; it cannot see tmpfs, memfd or shared memory, so such
results are marked "limits not enforced" (``limits_by = "watchdog"``).

Results come back over a pipe only (``channel.py``), never from the run's
filesystem, and are read as data with a size cap per file.

The peak memory reported (``RunOutcome.peak_rss_mb``) is what the memory limit
counts: with a cgroup, its peak charge (anonymous memory and the page cache
the run brought in; shared libraries already cached by the host are not
charged again, so it is lower than the sum of the processes' RSS); without,
the largest resident size of the process tree the watchdog saw.

``Sandbox.mode = "none"`` runs the same runner without isolation (the cgroup
or the watchdog's wall time, memory, process-count and disk limits, the
rlimits where ``prlimit`` exists, CPU pinning and the output cap still apply,
but no seccomp filter and no size-capped filesystems; RLIMIT_NPROC does not
bind root); every result is then marked ``sandboxed: false``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..errors import SandboxUnavailable
from ..model import RunOutcome, Status
from ..settings import Sandbox
from . import bwrap
from .cells import cell_labels, describe
from .cgroups import Limits
from .channel import Receiver
from .collect import EXECUTED, PROGRESS, PROGRESS_BYTES, RUN_REPORT, RUN_REPORT_BYTES, read_progress, read_report
from .host import check_available, limit_cgroups
from .limits import Disk, OutputTail, Slot, size_setting, slot_cpus, watch
from .spec import CAPTURE, INSIDE_KIT, PAYLOAD, RUNNER, RunSpec

__all__ = ["check_available", "run_notebook", "sandbox_here"]
CHECKPOINT = "checkpoint"  # the evidence the runner sends after each cell arrives under checkpoint/<its name>


def sandbox_here(settings: Sandbox) -> str:
    """The way runs are made on this machine, with their limits; raises SandboxUnavailable if a run cannot be
    made as the course says (no bubblewrap, no cgroup rights, no seccomp filter): a batch asks before anyone."""
    strategy = check_available(settings)
    limit_cgroups(settings)
    return strategy


def _cgroup(settings: Sandbox, slot: int):
    """This run's cgroup, or None when the course turned cgroups off; no cgroup otherwise means no run."""
    cgroup_host = limit_cgroups(settings)
    if cgroup_host is None:
        return None
    try:
        return cgroup_host.create(
            slot,
            Limits(settings.memory_mb, settings.max_processes, slot_cpus(slot, settings.threads), settings.threads),
        )
    except OSError as exc:
        logging.getLogger(__name__).warning("no cgroup for this run: %s", exc)
        raise SandboxUnavailable(
            f"the run's cgroup could not be made ({exc}), so its limits cannot be enforced; the notebook was not run"
        ) from None


def _inputs(scratch: Path) -> dict[str, Path]:
    """The submission's files (the notebook, spam_data.py, the student's own), by their path in the home."""
    return {
        path.relative_to(scratch).as_posix(): path
        for path in sorted(scratch.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def run_notebook(
    notebook: Path,
    scratch: Path,
    data_file: Path,
    settings: Sandbox,
    env: dict,
    capture: dict,
    evidence_files: dict[str, int],
) -> RunOutcome:
    """Execute ``scratch/notebook`` (already copied there with the submission's files) and capture evidence.

    ``capture`` goes to the capture cells as is (where they write, what they
    call plot_history with); ``evidence_files`` names the files, relative to
    the home, that the capture writes and the largest size accepted of each.
    Afterwards ``scratch`` holds only what came back over the channel: the
    executed notebook, the runner's report, the progress file, the evidence
    files and, under ``checkpoint/``, the evidence of the last checkpoint.
    """
    strategy = check_available(settings)
    sandboxed = strategy != "none"
    labels = cell_labels(notebook)
    max_notebook_bytes = notebook.stat().st_size + settings.max_output_bytes + 1_000_000
    accepted = {
        RUN_REPORT: RUN_REPORT_BYTES,
        PROGRESS: PROGRESS_BYTES,
        EXECUTED: max_notebook_bytes,
        **evidence_files,
        **{f"{CHECKPOINT}/{name}": size for name, size in evidence_files.items()},
    }
    with Slot() as slot:
        spec = RunSpec.make(settings, strategy, slot, _inputs(scratch), data_file, env, home=scratch)
        kit = INSIDE_KIT if sandboxed else str(PAYLOAD)
        read_end, write_end = os.pipe()
        receiver = Receiver(read_end, accepted)
        runner_spec = {
            "notebook": f"{spec.home}/{notebook.name}",
            "channel": write_end,
            "cell_timeout": settings.cell_timeout,
            "max_output_bytes": settings.max_output_bytes,
            "capture": f"{kit}/{CAPTURE.name}",
            "capture_settings": capture,
            "evidence_files": evidence_files,
            "checkpoint": CHECKPOINT,
            "filesystems": [
                {"path": path, "mb": mb, "setting": size_setting(mb, settings)} for path, mb in spec.writable_mb.items()
            ],
            "names": {"report": RUN_REPORT, "progress": PROGRESS, "executed": EXECUTED},
        }
        group = None
        try:
            group = _cgroup(settings, slot)
            launch = bwrap.command(spec)
            command = [*launch.argv, sys.executable, f"{kit}/{RUNNER.name}", json.dumps(runner_spec)]
            start = time.monotonic()
            try:
                popen = subprocess.Popen(
                    group.wrap(command) if group else command,
                    cwd=scratch,
                    env=None if sandboxed else {**spec.env, "PATH": os.environ.get("PATH", "")},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    pass_fds=[*launch.fds, write_end],
                )
            finally:
                launch.close()
                os.close(write_end)
                write_end = None
            receiver.start()
            tail = OutputTail(popen.stdout)
            tail.start()
            watched = watch(popen, Disk(popen.pid, spec.writable_mb, scratch, settings), settings, group)
            tail.join(timeout=5)
            receiver.join(timeout=10)
            seconds = time.monotonic() - start
        finally:
            if write_end is not None:
                os.close(write_end)
            if receiver.ident is None:  # never started: the pipe is still ours to close
                os.close(read_end)
            if group is not None:
                group.remove()
        status, message = watched.status, watched.message

    untrusted = scratch.with_name("untrusted")  # what a run without a sandbox left in its folder
    os.rename(scratch, untrusted)
    scratch.mkdir(mode=0o700)
    problems = receiver.write_to(scratch)
    shutil.rmtree(untrusted, ignore_errors=True)
    capture_errors: list = []
    progress, log = read_progress(scratch), ""  # the progress file: where a run the watchdog ended was
    if status is None:
        if problems.get(EXECUTED) == "too big":
            status, message = Status.TOO_MUCH_OUTPUT, f"the executed notebook is larger than {max_notebook_bytes} bytes"
        elif RUN_REPORT not in problems and EXECUTED not in problems:
            status, message, capture_errors, progress = read_report(scratch)
        else:
            status = Status.NO_OUTPUT
            message, log = f"the notebook run stopped without a result (exit {popen.returncode})", tail.text()[-1500:]
    status, message = describe(status, message, progress, labels, settings)
    if log:
        message += f": {log}"
    return RunOutcome(
        status=status,
        message=message,
        sandboxed=sandboxed,
        seconds=round(seconds, 2),
        peak_rss_mb=round(watched.peak_mb, 1),
        capture_errors=capture_errors,
        cpu_seconds=None if watched.cpu_seconds is None else round(watched.cpu_seconds, 2),
        cpu_threads=settings.threads,
        limits_by=group.version if group is not None else "watchdog",
    )
