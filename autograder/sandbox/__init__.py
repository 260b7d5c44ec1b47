"""Run the notebook runner isolated from the course, with limits.

Student code runs in the payload (``payload/runner.py``: nbgrader's Execute
plus the evidence capture of ``payload/capture.py``) inside bubblewrap. The
package's parts, in the order a run uses them:

- ``host``: which way sandboxes can be made here (probed once per process);
- ``bwrap``: the command line and the filesystem view student code gets;
- ``limits``: rlimits, CPU pinning and the watchdog;
- ``collect``: bringing the result files back without trusting them;
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
disk_mb                RLIMIT_FSIZE per file (prlimit) + the watchdog's walk of
                       the scratch folder: kill, status ``too_much_disk``;
                       /tmp and /dev/shm are tmpfs capped at TMPFS_MB each
cpu_threads            the run's cgroup: cpuset of the slot's CPUs (the run cannot
                       widen its affinity) and a CPU quota of that many cores;
                       ``taskset`` pins the tree to them too (one slot per
                       concurrent sandbox) + OMP/BLAS/TF thread variables. 0 in
                       the course config: the cores shared among the sandboxes
                       that run at once, fixed in the GradingJob
network                a new, empty network namespace (loopback only)
=====================  ==============================================================

Where the host offers no cgroup (``host.limit_cgroups``: no rights, or
``Sandbox.cgroups = "off"``), the watchdog polls memory and processes from
/proc, often near a limit and twice a second far from one.

The peak memory reported (``RunOutcome.peak_rss_mb``) is what the memory limit
counts: with a cgroup, its peak charge (anonymous memory and the page cache
the run brought in; shared libraries already cached by the host are not
charged again, so it is lower than the sum of the processes' RSS); without,
the largest resident size of the process tree the watchdog saw.

``Sandbox.mode = "none"`` runs the same runner without isolation (the cgroup
or the watchdog's wall time, memory, process-count and disk limits, the
rlimits where ``prlimit`` exists, CPU pinning and the output cap still apply;
RLIMIT_NPROC does not bind root); every result is then marked ``sandboxed: false``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

from ..model import RunOutcome, Status
from ..settings import Sandbox
from . import bwrap
from .cells import cell_labels, describe
from .cgroups import Limits
from .collect import (EXECUTED, PROGRESS, PROGRESS_BYTES, RUN_REPORT, RUN_REPORT_BYTES, bring_back, read_progress,
                      read_report)
from .host import check_available, limit_cgroups
from .limits import OutputTail, Slot, pin_if_possible, rlimits_if_possible, slot_cpus, watch

__all__ = ["check_available", "run_notebook"]


def _cgroup(settings: Sandbox, slot: int):
    """This run's cgroup, or None: the host has none for us, or making one failed (the watchdog then polls)."""
    cgroup_host = limit_cgroups(settings)
    if cgroup_host is None:
        return None
    try:
        return cgroup_host.create(slot, Limits(settings.memory_mb, settings.max_processes,
                                               slot_cpus(slot, settings.threads), settings.threads))
    except OSError as exc:
        logging.getLogger(__name__).warning("no cgroup for this run (%s); the watchdog polls instead", exc)
        return None


def run_notebook(notebook: Path, scratch: Path, data_file: Path, settings: Sandbox, env: dict, capture: dict,
                 evidence_files: dict[str, int]) -> RunOutcome:
    """Execute ``scratch/notebook`` (already copied there) and capture evidence.

    ``capture`` goes to the capture cells as is (where they write, what they
    call plot_history with); ``evidence_files`` names the files, relative to
    ``scratch``, that the capture writes and the largest size accepted of
    each. Afterwards ``scratch`` holds only checked result files: the
    executed notebook, the runner's report and those evidence files.
    """
    strategy = check_available(settings)
    sandboxed = strategy != "none"
    labels = cell_labels(notebook)  # before the run: the sandbox can write to scratch
    max_notebook_bytes = notebook.stat().st_size + settings.max_output_bytes + 1_000_000
    with Slot() as slot:
        if sandboxed:
            home, kit, data = bwrap.INSIDE_HOME, bwrap.INSIDE_KIT, bwrap.INSIDE_DATA
            if not os.stat(data_file).st_mode & stat.S_IROTH:  # the sandbox's uid must read it
                data_file = Path(shutil.copy(data_file, scratch.with_name("public_splits.tsv")))
                data_file.chmod(0o644)
            bwrap.prepare_scratch(scratch, strategy, slot)
            command = bwrap.command(strategy, slot, scratch, data_file, settings,
                                    bwrap.environment(settings, home, data, env))
            popen_env = None
        else:
            home, kit, data = str(scratch), str(bwrap.PAYLOAD), str(data_file)
            command = [*rlimits_if_possible(settings), *pin_if_possible(slot, settings)]
            popen_env = {**bwrap.environment(settings, home, data, env), "PATH": os.environ.get("PATH", "")}
        spec = {"notebook": f"{home}/{notebook.name}", "output": f"{home}/{EXECUTED}", "report": f"{home}/{RUN_REPORT}",
                "progress": f"{home}/{PROGRESS}", "cell_timeout": settings.cell_timeout,
                "max_output_bytes": settings.max_output_bytes,
                "capture": f"{kit}/{bwrap.CAPTURE.name}", "capture_settings": capture}
        command += [sys.executable, f"{kit}/{bwrap.RUNNER.name}", json.dumps(spec)]
        group = _cgroup(settings, slot)
        try:
            start = time.monotonic()
            popen = subprocess.Popen(group.wrap(command) if group else command, cwd=scratch, env=popen_env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
            tail = OutputTail(popen.stdout)
            tail.start()
            watched = watch(popen, scratch, settings, group)
            tail.join(timeout=5)
            seconds = time.monotonic() - start
        finally:
            if group is not None:
                group.remove()
        status, message = watched.status, watched.message

    untrusted, problems = bring_back(scratch, {RUN_REPORT: RUN_REPORT_BYTES, PROGRESS: PROGRESS_BYTES,
                                               **evidence_files, EXECUTED: max_notebook_bytes})
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
    shutil.rmtree(untrusted, ignore_errors=True)
    return RunOutcome(status=status, message=message, sandboxed=sandboxed, seconds=round(seconds, 2),
                      peak_rss_mb=round(watched.peak_mb, 1), capture_errors=capture_errors,
                      cpu_seconds=None if watched.cpu_seconds is None else round(watched.cpu_seconds, 2),
                      cpu_threads=settings.threads, limits_by=group.version if group is not None else "watchdog")
