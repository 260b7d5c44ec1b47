"""Adversarial submissions, as code: what a student could try against the grader.

Each case is a student whose notebook replaces some solution cells
(``compile``, ``fit``, ``plot_history``) of the released lab. The attack sits
in the ``compile`` cell where it can, so it runs early and cheaply; most cases
skip training (``fit`` = ``history = None``). Attacks that observe something
print one line ``ADV {json}`` that the tests read back from the autograded
notebook. ``Target`` says where the attacks aim: real paths of the course
being graded, of the kit and of the host.

``tests/integration/sandbox/test_adversarial.py`` grades all of them in one
nbgrader batch and checks that each is contained, the status recorded and the
grade it gets. ``crash_cases`` end the run right after an exercise (kernel
death, memory): the exercises done before still earn their points.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field

NO_FIT = "epochs = 1\nhistory = None  # no training: keeps the case cheap\n"


@dataclass
class Target:
    course: str  # the course root being graded
    repo: str  # the kit's checkout (autograder/ with the hidden checks)
    data_dir: str  # the host's copy of the raw data set
    other: str  # another student, graded before
    port: int  # a TCP server the test runs on the host's 127.0.0.1
    token: str  # unique name part of canary files on the host
    needles: list = field(default_factory=list)  # texts only the hidden test split holds


@dataclass
class Case:
    student: str
    attack: str
    answers: dict  # grade_id -> cell source; the rest are the reference answers
    status: str  # the run status the grader must record
    after: dict = field(default_factory=dict)  # grade_id -> source of a cell the student added after it


def student_notebook(case: Case, release, reference: dict):
    """The case's notebook: the release with the reference answers, the case's answers and its added cells."""
    import nbformat.v4 as v4
    from kit_testing import fill

    nb = fill(release, {**reference, **case.answers})
    for grade_id, source in case.after.items():
        at = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        nb.cells.insert(at + 1, v4.new_code_cell(source))
    return nb


def _code(text: str, **values) -> str:
    text = textwrap.dedent(text).strip() + "\n"
    for key, value in values.items():
        text = text.replace("{" + key + "}", repr(value))
    return text


def _report(expr: str) -> str:
    return f"import json as _j\nprint('ADV ' + _j.dumps({expr}))\n"


def snoop(t: Target) -> str:
    """Read what must stay hidden, and search the whole visible filesystem for the hidden split."""
    return _code(
        """
        import glob, os
        COURSE, REPO, OTHER = {course}, {repo}, {other}

        def attempt(path):
            try:
                with open(path, "rb") as f:
                    return "READ %d bytes" % len(f.read(100))
            except Exception as exc:
                return type(exc).__name__

        targets = {
            "solution notebook": COURSE + "/source/spam_transformer/spam_transformer.ipynb",
            "hidden checks": REPO + "/autograder/grading/checks/test_fit.py",
            "gradebook": COURSE + "/gradebook.db",
            "gradebook (../../../)": "../../../gradebook.db",
            "other student's submission": COURSE + "/submitted/" + OTHER + "/spam_transformer/spam_transformer.ipynb",
            "other student's autograded": COURSE + "/autograded/" + OTHER + "/spam_transformer/spam_transformer.ipynb",
            "other student's result": COURSE + "/.kit/results/spam_transformer/" + OTHER + ".json",
            "course config": COURSE + "/course_config.py",
            "raw data set": {data_dir} + "/sms_spam_collection/SMSSpamCollection",
            "/etc/shadow": "/etc/shadow",
            "/root/.bashrc": "/root/.bashrc",
        }
        reads = {name: attempt(path) for name, path in targets.items()}
        try:
            import autograder.grading.checks
            reads["import autograder.checks"] = "IMPORTED"
        except Exception as exc:
            reads["import autograder.checks"] = type(exc).__name__
        listings = {}
        for folder in [COURSE, REPO, os.path.dirname(REPO), "/home", "/tmp", "/opt/data"]:
            try:
                listings[folder] = sorted(os.listdir(folder))
            except Exception as exc:
                listings[folder] = type(exc).__name__
        grader_files = glob.glob("/tmp/spamkit-*") + glob.glob("/tmp/*/test.tsv")

        needles = [bytes.fromhex(n) for n in {needles}]  # hex, so that this notebook does not hold them
        skip = (".py", ".pyc", ".pyi", ".so", ".h", ".hpp", ".mo", ".png", ".svg", ".ttf", ".afm", ".html", ".js")
        MAX_SCANNED = 1_000_000  # the hidden split is ~110 kB, the whole data set ~480 kB; bigger files cost time
        found, scanned = [], 0
        for root, dirs, files in os.walk("/"):
            if root in ("/proc", "/sys", "/dev"):
                dirs[:] = []
                continue
            for name in files:
                path = os.path.join(root, name)
                try:
                    if name.endswith(skip) or os.path.islink(path) or os.path.getsize(path) > MAX_SCANNED:
                        continue
                    with open(path, "rb") as f:
                        data = f.read()
                except Exception:
                    continue
                scanned += 1
                if any(n in data for n in needles):
                    found.append(path)
        """,
        course=t.course,
        repo=t.repo,
        other=t.other,
        data_dir=t.data_dir,
        needles=[n.encode().hex() for n in t.needles],
    ) + _report(
        '{"reads": reads, "listings": listings, "grader_files": grader_files, "found": found, "scanned": scanned}'
    )


def write_outside(t: Target) -> str:
    """Write over the gradebook, the solutions and the checks; plant code for the grader to import."""
    return _code(
        """
        import os, sysconfig
        COURSE, REPO, TOKEN = {course}, {repo}, {token}
        results = {}

        def attempt(name, action):
            try:
                action()
                results[name] = "WROTE"
            except Exception as exc:
                results[name] = type(exc).__name__

        def overwrite(path):
            with open(path, "r+b") as f:
                f.write(b"pwned")

        def open_for_writing(path):  # enough to show write access; writes nothing
            open(path, "r+b").close()

        attempt("gradebook", lambda: overwrite(COURSE + "/gradebook.db"))
        attempt("gradebook (../../../)", lambda: overwrite("../../../gradebook.db"))
        attempt("delete solution notebook", lambda: os.remove(COURSE + "/source/spam_transformer/spam_transformer.ipynb"))
        attempt("new file in course", lambda: open(COURSE + "/pwned-" + TOKEN, "w").close())
        attempt("hidden checks", lambda: open_for_writing(REPO + "/autograder/grading/checks/conftest.py"))
        attempt("site-packages", lambda: open(sysconfig.get_paths()["purelib"] + "/pwned_" + TOKEN + ".pth", "w").close())
        attempt("/usr", lambda: open("/usr/pwned-" + TOKEN, "w").close())
        attempt("/etc/passwd", lambda: open_for_writing("/etc/passwd"))
        attempt("private /tmp", lambda: open("/tmp/pwned-" + TOKEN, "w").close())

        # code the grader would run if it imported modules from the scratch folder
        payload = "open('/tmp/pwned-%s-imported', 'w').close()\\n" % TOKEN
        for planted in ("pytest.py", "conftest.py", "sitecustomize.py", "nbformat.py", "jsonschema.py", "h5py.py"):
            with open(planted, "w") as f:
                f.write(payload)
        os.makedirs("autograder/grading/checks", exist_ok=True)
        for planted in ("autograder/__init__.py", "autograder/grading/__init__.py", "autograder/grading/evidence.py",
                        "autograder/grading/checks/conftest.py"):
            with open(planted, "w") as f:
                f.write(payload)
        """,
        course=t.course,
        repo=t.repo,
        token=t.token,
    ) + _report("results")


def network(t: Target) -> str:
    return _code(
        """
        import socket
        results = {}
        for name, address in {"host 127.0.0.1 server": ("127.0.0.1", {port}), "public address": ("1.1.1.1", 53)}.items():
            try:
                socket.create_connection(address, timeout=5).close()
                results[name] = "CONNECTED"
            except Exception as exc:
                results[name] = type(exc).__name__
        try:
            socket.getaddrinfo("pypi.org", 443)
            results["dns"] = "RESOLVED"
        except Exception as exc:
            results["dns"] = type(exc).__name__
        results["interfaces"] = [name for _, name in socket.if_nameindex()]
        """,
        port=t.port,
    ) + _report("results")


def evidence_symlinks(t: Target) -> str:
    """A process that outlives the kernel swaps the evidence for symlinks to the gradebook and /etc/passwd."""
    watcher = _code(
        """
        import os, time
        swaps = {"evidence/evidence.json": {gradebook}, "evidence/model.weights.h5": "/etc/passwd"}
        while True:
            for path, target in swaps.items():
                if os.path.isfile(path) and not os.path.islink(path):
                    os.symlink(target, path + ".swap")
                    os.replace(path + ".swap", path)
            time.sleep(0.002)
        """,
        gradebook=t.course + "/gradebook.db",
    )
    return _code(
        """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", {watcher}], start_new_session=True)
        """,
        watcher=watcher,
    )


def planted_evidence() -> str:
    """Evidence written by the notebook itself, made read-only so that the capture cell cannot replace it."""
    return _code("""
        import os
        os.makedirs("evidence", exist_ok=True)
        with open("evidence/evidence.json", "w") as f:
            f.write("{}")
        os.chmod("evidence/evidence.json", 0o444)
        os.chmod("evidence", 0o555)
        """)


def monkeypatch() -> tuple[str, str]:
    """Compile with SGD + MSE but make the kernel report Adam + cross-entropy: an SGD class named like
    Keras' Adam bound to keras.optimizers.Adam, an edited compile config, a patched isinstance; lie
    about val_auc; replace pytest in the kernel."""
    compile_cell = _code("""
        import builtins, sys, types
        learning_rate = 1e-3
        class Adam(keras.optimizers.SGD):                      # an SGD whose class claims to be Keras' Adam
            pass
        Adam.__module__, Adam.__qualname__ = "keras.src.optimizers.adam", "Adam"
        keras.optimizers.Adam = Adam                           # `type(opt) is keras.optimizers.Adam` -> True
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse",
                      metrics=["accuracy", keras.metrics.AUC(name="auc")])
        model._compile_config.config["loss"] = "binary_crossentropy"
        _real_isinstance = builtins.isinstance
        builtins.isinstance = lambda obj, cls: True if cls is keras.callbacks.History else _real_isinstance(obj, cls)
        fake = types.ModuleType("pytest")
        fake.main = lambda *a, **k: 0
        sys.modules["pytest"] = fake
        """)
    fit_cell = _code("""
        epochs = 1
        history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=0)
        history.history["val_auc"] = [0.999] * epochs     # claim a validation AUC it never had
        """)
    return compile_cell, fit_cell


# x86_64 numbers of the system calls the sandbox's seccomp filter denies (autograder/sandbox/seccomp.py)
DENIED_CALLS = {
    "unshare": 272,
    "setns": 308,
    "mount": 165,
    "umount2": 166,
    "pivot_root": 155,
    "keyctl": 250,
    "add_key": 248,
    "request_key": 249,
    "bpf": 321,
    "io_uring_setup": 425,
    "userfaultfd": 323,
    "perf_event_open": 298,
    "ptrace": 101,
    "process_vm_readv": 310,
    "kexec_load": 246,
    "init_module": 175,
    "finit_module": 313,
    "delete_module": 176,
    "open_by_handle_at": 304,
}


def denied_calls() -> str:
    """Every denied system call from student code, each in a forked single-threaded child (a kernel with
    threads gets EINVAL from unshare(CLONE_NEWUSER) whatever the filter), clone(CLONE_NEWUSER) too."""
    return _code(
        """
        import ctypes, os, platform
        NR = {calls}
        CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
        ARGS = {"unshare": (CLONE_NEWUSER,), "setns": (-1, CLONE_NEWUSER), "ptrace": (-1, 0)}
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long

        def in_child(nr, args):
            read_end, write_end = os.pipe()
            pid = os.fork()
            if pid == 0:
                ctypes.set_errno(0)
                result = libc.syscall(ctypes.c_long(nr), *(ctypes.c_long(a) for a in args))
                code = 0 if result >= 0 else ctypes.get_errno()
                if result == 0 and nr == 56:   # a clone that worked: the new child leaves at once
                    os._exit(0)
                os.write(write_end, str(code).encode())
                os._exit(0)
            os.close(write_end)
            answer = os.read(read_end, 16).decode()
            os.waitpid(pid, 0)
            os.close(read_end)
            return int(answer) if answer else -1

        if platform.machine() == "x86_64":
            errnos = {name: in_child(nr, ARGS.get(name, ())) for name, nr in NR.items()}
            errnos["clone(CLONE_NEWUSER)"] = in_child(56, (CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0))
            import errno as _errno
            calls = {name: _errno.errorcode.get(code, str(code)) for name, code in errnos.items()}
        else:
            calls = "not x86_64"
        """,
        calls=DENIED_CALLS,
    ) + _report("calls")


def fill_unseen(folder: str) -> str:
    """Fill ``folder`` with files no directory walk sees (O_TMPFILE, and files unlinked while open), without end."""
    return _code(
        """
        import os
        held = []
        i = 0
        while True:
            if i % 2:
                fd = os.open({folder}, os.O_TMPFILE | os.O_WRONLY, 0o600)
            else:
                name = {folder} + "/.gone%d" % i
                fd = os.open(name, os.O_CREAT | os.O_WRONLY, 0o600)
                os.unlink(name)
            held.append(fd)
            try:
                for _ in range(20):
                    os.write(fd, b"x" * 1_000_000)
            except OSError:   # full: the kernel said no; keep trying, as a disk filler would
                pass
            i += 1
        """,
        folder=folder,
    )


KILL_KERNEL = "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"
MEMORY_HOG = "hog = []\nwhile True:\n    hog.append(bytearray(50_000_000))\n"


def crash_cases() -> list[Case]:
    """A kernel death or a memory blow-up right after each exercise: the exercises done before are graded."""
    return [
        Case(
            "crash_die_after_compile", "kernel killed at the start of the fit cell", {"fit": KILL_KERNEL}, "kernel_died"
        ),
        Case(
            "crash_oom_after_compile",
            "memory blow-up at the start of the fit cell",
            {"fit": MEMORY_HOG},
            "out_of_memory",
        ),
        Case(
            "crash_die_after_fit",
            "kernel killed at the start of the plot_history cell",
            {"plot_history": KILL_KERNEL},
            "kernel_died",
        ),
        Case(
            "crash_oom_after_plot",
            "memory blow-up in a cell added after the plots",
            {},
            "out_of_memory",
            after={"test_plot": MEMORY_HOG},
        ),
    ]


def cases(t: Target, reference: dict) -> list[Case]:
    """The adversarial corpus against target ``t``; ``reference`` = the reference answers."""
    ref_compile = reference["compile"].rstrip("\n") + "\n"
    patched_compile, patched_fit = monkeypatch()
    return [
        Case(
            "adv_snoop",
            "read solutions, hidden checks, gradebook, other students; search for the hidden split",
            {"compile": snoop(t) + ref_compile, "fit": NO_FIT},
            "ok",
        ),
        Case(
            "adv_write",
            "write over gradebook, solutions, checks, system; plant pytest.py/conftest.py for the grader",
            {"compile": write_outside(t) + ref_compile, "fit": NO_FIT},
            "ok",
        ),
        Case(
            "adv_network",
            "connect to a server on the host's 127.0.0.1, to the internet, resolve DNS",
            {"compile": network(t) + ref_compile, "fit": NO_FIT},
            "ok",
        ),
        Case(
            "adv_symlink",
            "swap evidence files for symlinks to the gradebook and /etc/passwd after capture",
            {"compile": ref_compile + evidence_symlinks(t), "fit": NO_FIT},
            "ok",
        ),
        Case(
            "adv_planted_evidence",
            "plant a read-only fake evidence.json in a read-only folder",
            {"compile": ref_compile + planted_evidence(), "fit": NO_FIT},
            "ok",
        ),
        Case(
            "adv_cell_timeout",
            "a cell that sleeps forever (interrupted at the cell timeout)",
            {"fit": "import time\nepochs = 1\ntime.sleep(10**6)\n"},
            "cell_timeout",
        ),
        Case(
            "adv_memory_leak",
            "allocate 80 MB every 50 ms until killed",
            {
                "compile": ref_compile
                + _code("""
                 import numpy as np, time
                 hog = []
                 while True:
                     hog.append(np.ones(10_000_000))
                     time.sleep(0.05)
                 """)
            },
            "out_of_memory",
        ),
        Case(
            "adv_huge_alloc",
            "one 100 GB allocation",
            {
                "compile": ref_compile
                + _code("""
                 try:
                     hog = bytearray(100 * 2**30)
                     outcome = "ALLOCATED"
                 except MemoryError:
                     outcome = "MemoryError"
                 """)
                + _report("outcome"),
                "fit": NO_FIT,
            },
            "ok",
        ),
        Case(
            "adv_fork_bomb",
            "fork forever",
            {
                "compile": _code("""
                 import os
                 while True:
                     try:
                         os.fork()
                     except OSError:
                         pass
                 """)
            },
            "too_many_processes",
        ),
        Case(
            "adv_output_flood",
            "print without end",
            {"compile": "while True:\n    print('spam ' * 200)\n"},
            "too_much_output",
        ),
        Case(
            "adv_disk_fill",
            "fill the home with O_TMPFILE and unlinked files without end",
            {"compile": fill_unseen(".")},
            "too_much_disk",
        ),
        Case(
            "adv_shm_fill",
            "fill /dev/shm with O_TMPFILE and unlinked files without end",
            {"compile": fill_unseen("/dev/shm")},
            "too_much_disk",
        ),
        Case(
            "adv_syscalls",
            "new user namespaces (forked child, clone and unshare), mount, keyctl, bpf, io_uring, ...",
            {"compile": denied_calls() + ref_compile, "fit": NO_FIT},
            "ok",
        ),
        Case(
            "adv_exit",
            "os._exit(0) in the middle of the notebook",
            {"compile": "import os\nos._exit(0)\n"},
            "kernel_died",
        ),
        Case(
            "adv_kill_parent",
            "kill the kernel's parent (the runner)",
            {"compile": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"},
            "no_output",
        ),
        Case(
            "adv_monkeypatch",
            "SGD + MSE disguised as Adam + cross-entropy, a lying history, fake pytest",
            {"compile": patched_compile, "fit": patched_fit},
            "ok",
        ),
        *crash_cases(),
    ]


def endless_loop() -> Case:
    """Graded in a batch of its own with a short notebook timeout."""
    return Case(
        "tmo_endless_loop",
        "an endless loop that swallows the cell-timeout interrupt",
        {
            "compile": _code("""
                    import time
                    while True:
                        try:
                            time.sleep(1)
                        except KeyboardInterrupt:
                            pass
                    """)
        },
        "timeout",
    )


def adv_lines(outputs: list) -> list:
    """The ``ADV`` reports in a cell's outputs."""
    found = []
    for output in outputs:
        text = output.get("text", "") if output.get("output_type") == "stream" else ""
        for line in text.splitlines():
            if line.startswith("ADV "):
                found.append(json.loads(line[4:]))
    return found
