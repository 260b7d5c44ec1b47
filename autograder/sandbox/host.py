"""Which way sandboxes can be made on this host, probed once per process.

``privileged`` (grader is root)
    bwrap runs as root without a user namespace, then ``setpriv`` drops the
    student's processes to a uid of their own (``SANDBOX_UID_BASE + slot``,
    no account, no capabilities, no_new_privs). Real uid 0 would make the
    kernel ignore RLIMIT_NPROC, also inside a user namespace mapped to root.
``drop-then-userns`` (root, bwrap cannot mount without a user namespace)
    ``setpriv`` to that uid first, then unprivileged bwrap.
``userns`` (grader is not root)
    unprivileged bwrap with ``--unshare-user --disable-userns``.

The probe starts a real sandbox with the kit's Python; when no way works,
``check_available`` raises the same ``SandboxUnavailable`` for every
submission and nothing is graded.

``limit_cgroups`` says, also once per process, whether runs get a cgroup of
their own (``cgroups.probe``: v2, v1 or none) for kernel-enforced limits.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import SandboxUnavailable
from ..settings import Sandbox
from . import cgroups, seccomp
from .bwrap import KIT_PACKAGE, bwrap_path, command, host_python_roots, is_within
from .limits import Slot, tool
from .spec import RunSpec

_STRATEGY: dict = {}  # mode -> strategy, or the SandboxUnavailable raised (checked once per process)
_CGROUPS: dict = {}  # "host" -> cgroups.Host or None (probed once per process)


def strategies() -> list[str]:
    return ["privileged", "drop-then-userns"] if os.geteuid() == 0 else ["userns"]


def check_available(settings: Sandbox) -> str:
    """The way sandboxes are made here; raises SandboxUnavailable if there is none.

    Probed once per process by starting the real sandbox with the kit's Python.
    Returns "none" when the course opted out.
    """
    if settings.mode == "none":
        return "none"
    if settings.mode not in _STRATEGY:
        try:
            _STRATEGY[settings.mode] = find_strategy(settings)
        except SandboxUnavailable as exc:
            _STRATEGY[settings.mode] = exc
    found = _STRATEGY[settings.mode]
    if isinstance(found, SandboxUnavailable):
        raise found
    return found


def limit_cgroups(settings: Sandbox) -> cgroups.Host | None:
    """How runs get a cgroup here (v2 or v1); None only when the course turned them off (the watchdog then polls).

    Without cgroup rights nothing is graded (``SandboxUnavailable``): the watchdog alone cannot see
    tmpfs, memfd or shared memory, nor keep a run on its CPUs. Probed once per process.
    """
    if settings.cgroups == "off":
        return None
    if "host" not in _CGROUPS:
        _CGROUPS["host"] = cgroups.probe()
    if _CGROUPS["host"] is None:
        raise SandboxUnavailable(
            "the grader may not make cgroups here, so the kernel cannot hold a notebook to its memory, process "
            "and CPU limits. Grade as root, or give the grading account a delegated cgroup v2 subtree "
            "(systemd: Delegate=yes; see the README), or opt out knowingly with --Sandbox.cgroups=off "
            "(every result is then marked 'limits not enforced')."
        )
    return _CGROUPS["host"]


def exposed_checkout(python_roots: list[str]) -> str | None:
    """The Python tree that would show the kit's checkout (solutions, checks) to the sandbox, if any.

    A venv inside the repo is fine (only the venv folder is bound); the repo inside a
    bound Python tree (say, a venv made in the repo root) is not.
    """
    checkout = KIT_PACKAGE.parent
    if not (checkout / "pyproject.toml").is_file():  # installed into site-packages: masked by a tmpfs
        return None
    return next((root for root in python_roots if is_within(str(checkout), root)), None)


def find_strategy(settings: Sandbox) -> str:
    exposing = exposed_checkout(host_python_roots())
    if exposing:
        raise SandboxUnavailable(
            f"the Python environment {exposing} contains the kit's checkout {KIT_PACKAGE.parent}; binding it "
            "into the sandbox would show the course to student code. Use a venv in its own folder "
            "(e.g. <checkout>/.venv) or opt out knowingly with --Sandbox.mode=none."
        )
    if not bwrap_path():
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed (or this is not Linux), so student code cannot be isolated. "
            "Install it (Debian/Ubuntu: apt-get install bubblewrap; the README's setup does), "
            "or opt out knowingly with --Sandbox.mode=none (every result is then marked unsandboxed)."
        )
    for name in ("prlimit", "setpriv", "taskset") if os.geteuid() == 0 else ("prlimit", "taskset"):
        tool(name)
    try:
        seccomp.filter_program()
    except (ImportError, OSError, RuntimeError) as exc:
        raise SandboxUnavailable(
            f"the sandbox's seccomp filter cannot be built ({type(exc).__name__}: {exc}): libseccomp "
            "(Debian/Ubuntu: libseccomp2) and the pyseccomp package are needed"
        ) from None
    failures = []
    with tempfile.TemporaryDirectory(prefix="spamkit-probe-") as tmp:
        data = Path(tmp) / "data.tsv"
        data.write_text("probe\n", encoding="utf-8")
        data.chmod(0o644)
        # the runner's packages must be visible in the sandbox (found, not imported: importing costs seconds)
        probe = (
            "import importlib.util as u; missing = [m for m in ('ipykernel', 'nbclient', 'nbgrader') "
            "if u.find_spec(m) is None]; assert not missing, missing; open('probe', 'w').write('ok'); print('ok')"
        )
        for strategy in strategies():
            with Slot() as slot:
                launch = command(RunSpec.make(settings, strategy, slot, {}, data, {}))
                try:
                    proc = subprocess.run(
                        [*launch.argv, sys.executable, "-c", probe],
                        capture_output=True,
                        text=True,
                        timeout=120,
                        pass_fds=launch.fds,
                    )
                finally:
                    launch.close()
            if proc.returncode == 0 and proc.stdout.strip() == "ok":
                return strategy
            failures.append(f"{strategy}: {(proc.stderr or proc.stdout).strip()[-500:] or f'exit {proc.returncode}'}")
    raise SandboxUnavailable(
        "bubblewrap is installed but cannot create a sandbox here (" + "; ".join(failures) + "). "
        "In a container it needs CAP_SYS_ADMIN or unprivileged user namespaces; "
        "or opt out knowingly with --Sandbox.mode=none."
    )
