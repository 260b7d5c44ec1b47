"""One run, decided once: who runs it, what it sees, what bounds it.

``RunSpec.make`` takes the course's ``Sandbox`` settings, the way sandboxes
are made here (``host``) and the run's slot, and settles everything a run is
made of in one pass: the uid student code runs as, its CPUs, its rlimits,
its environment, the files it starts with, the size of each filesystem it can
write, whether the seccomp filter applies. ``bwrap.command`` turns a spec into
a command line; ``limits.watch`` and the cgroup enforce the rest.

Where a run can write (sandboxed runs):

==================  ========================================================
/home/student       tmpfs of ``disk_mb`` (the scratch home; the notebook and
                    its files are copied in, nothing of the host is bound)
/tmp, /dev/shm      tmpfs of ``TMPFS_MB`` each
==================  ========================================================

Every byte there is memory of the run's cgroup (tmpfs pages are charged to
the cgroup that writes them), unlinked and ``O_TMPFILE`` files included, and
each filesystem is full at its size: the host's disk is never written.
``max_open_files`` is RLIMIT_NOFILE. Runs without a sandbox (``mode = none``)
write into the host's scratch folder, where only the watchdog's walk and
RLIMIT_FSIZE bound them.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import Sandbox
from .limits import slot_cpus, slot_uid

INSIDE_HOME = "/home/student"
INSIDE_KIT = "/opt/kit"
INSIDE_DATA = "/opt/data/public_splits.tsv"
TMPFS_MB = 256  # size of the sandbox's private /tmp and /dev/shm each
PAYLOAD = Path(__file__).resolve().parent / "payload"
RUNNER = PAYLOAD / "runner.py"
CAPTURE = PAYLOAD / "capture.py"
# The fences of library internals the payload loads by path (runner.py: nbgrader, nbclient, jupyter_client;
# capture.py: keras, matplotlib), copied in next to it as internals/<library>.py: the kit's package is not there.
INTERNALS = PAYLOAD.parent.parent / "internals"
PAYLOAD_INTERNALS = ("jupyter_client", "keras", "matplotlib", "nbclient", "nbgrader")


@dataclass
class RunSpec:
    """Everything one run is made of; ``bwrap.command`` makes it a command line."""

    strategy: str  # privileged, drop-then-userns, userns, or none (no sandbox)
    slot: int
    cpus: str  # the slot's CPUs, e.g. "0" or "0,1"
    threads: int
    uid: int | None  # the uid student code runs as, None: the grader's own
    rlimits: dict[str, int]  # prlimit's options: nproc, data, fsize, nofile, core
    env: dict[str, str]
    home: str  # the run's home as student code sees it
    inputs: dict[str, Path] = field(default_factory=dict)  # name in the home -> host file, copied in
    data_file: Path | None = None  # the public splits, copied to INSIDE_DATA
    writable_mb: dict[str, int] = field(default_factory=dict)  # each filesystem the run writes -> its size
    seccomp: bool = False  # the seccomp filter applies (every sandboxed run)

    @property
    def sandboxed(self) -> bool:
        return self.strategy != "none"

    @classmethod
    def make(
        cls,
        settings: Sandbox,
        strategy: str,
        slot: int,
        inputs: dict[str, Path],
        data_file: Path | None,
        extra_env: dict,
        home: Path | None = None,
        grader_uid: int | None = None,
    ) -> RunSpec:
        """The spec of one run. ``home``: the host folder a run without a sandbox works in;
        ``grader_uid``: who starts the run (default: this process), for RLIMIT_NPROC's count."""
        sandboxed = strategy != "none"
        home_inside = INSIDE_HOME if sandboxed else str(home)
        data_inside = INSIDE_DATA if sandboxed else str(data_file)
        uid = slot_uid(slot) if strategy in ("privileged", "drop-then-userns") else None
        return cls(
            strategy=strategy,
            slot=slot,
            cpus=slot_cpus(slot, settings.threads),
            threads=settings.threads,
            uid=uid,
            rlimits=rlimits(
                settings, counted_uid=uid if uid is not None else (os.getuid() if grader_uid is None else grader_uid)
            ),
            env=environment(settings, home_inside, data_inside, extra_env),
            home=home_inside,
            inputs=dict(inputs) if sandboxed else {},
            data_file=data_file,
            writable_mb={INSIDE_HOME: settings.disk_mb, "/tmp": TMPFS_MB, "/dev/shm": TMPFS_MB} if sandboxed else {},
            seccomp=sandboxed,
        )


def rlimits(settings: Sandbox, counted_uid: int) -> dict[str, int]:
    """prlimit's options. RLIMIT_NPROC counts every process of the uid: a grader's own uid (userns, none) starts
    with its other processes counted in; a sandbox uid of its own owns nothing else."""
    nproc = settings.max_processes
    if counted_uid < slot_uid(0) and counted_uid != 0:
        import psutil

        nproc += sum(
            p.info["num_threads"] or 0
            for p in psutil.process_iter(["uids", "num_threads"])
            if p.info["uids"] and p.info["uids"].real == counted_uid
        )
    return {
        "nproc": nproc,
        "data": int(settings.memory_mb * 1.5) << 20,
        "fsize": settings.disk_mb << 20,
        "nofile": settings.max_open_files,
        "core": 0,
    }


def environment(settings: Sandbox, home: str, data_file: str, extra: dict) -> dict:
    threads = str(settings.threads)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        # No MPLBACKEND: ipykernel then sets matplotlib_inline's backend, as in plain nbgrader, so the
        # student's plots are kept as image/png outputs of the executed notebook. The font cache is
        # built in the home on the first pyplot import (about 0.1 s with the system's fonts).
        "JUPYTER_RUNTIME_DIR": f"{home}/.jupyter-runtime",
        "IPYTHONDIR": f"{home}/.ipython",
        "MPLCONFIGDIR": f"{home}/.matplotlib",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        "TF_NUM_INTRAOP_THREADS": threads,
        "TF_NUM_INTEROP_THREADS": threads,
        "OMP_NUM_THREADS": threads,
        "OPENBLAS_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "NUMEXPR_NUM_THREADS": threads,
        "NBGRADER_EXECUTION": "autograde",
        "SPAM_LAB_SPLITS": data_file,
    }
    env.update({k: str(v) for k, v in extra.items()})
    return env
