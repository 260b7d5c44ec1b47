"""The sandbox holds against the adversarial corpus, graded by the real nbgrader.

One temp course: a normal student is graded first; then every case of
``tests/adversarial.py`` is graded in one ``nbgrader autograde`` batch with
small limits given on the command line. Each case must be contained, get the
status and grade expected, and leave the normal student's grades, the
course's source/release, the kit's checks and the host untouched.
Two tests start bare sandboxes (no notebook) to see the view and the process limit.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from adversarial import DENIED_CALLS, Target, adv_lines, cases, endless_loop, student_notebook
from kit_testing import (
    ASSIGNMENT,
    DATA_DIR,
    REPO,
    data_location,
    fill,
    gradebook_scores,
    make_course,
    nbgrader,
    release_notebook,
    source_answers,
    submit,
    summary,
)

from autograder.sandbox import bwrap, cgroups, host
from autograder.sandbox.limits import Slot
from autograder.sandbox.spec import RunSpec
from autograder.settings import Sandbox

# Small limits for the batch, given on the nbgrader command line.
LIMITS = {
    "notebook_timeout": 300,
    "cell_timeout": 60,
    "memory_mb": 1500,
    "max_processes": 96,
    "max_output_bytes": 500_000,
    "disk_mb": 100,
}


ZERO = {"test_compile": 0.0, "test_fit": 0.0, "test_plot": 0.0}
COMPILED_NOT_TRAINED = {"test_compile": 5.0, "test_fit": 0.0, "test_plot": 6.0}
# Per test cell, what each student must get.
EXPECTED = {
    "normal": {"test_compile": 5.0, "test_fit": 9.0, "test_plot": 6.0},
    "adv_snoop": COMPILED_NOT_TRAINED,
    "adv_write": COMPILED_NOT_TRAINED,
    "adv_network": COMPILED_NOT_TRAINED,
    "adv_symlink": ZERO,  # evidence swapped for symlinks: refused, nothing to check
    "adv_planted_evidence": COMPILED_NOT_TRAINED,  # the plant is cleared; the genuine capture is graded
    "adv_cell_timeout": COMPILED_NOT_TRAINED,  # the sleeping fit cell is interrupted, the rest still runs
    "adv_memory_leak": ZERO,
    "adv_huge_alloc": COMPILED_NOT_TRAINED,  # MemoryError at once, the kernel lives on
    "adv_fork_bomb": ZERO,
    "adv_output_flood": ZERO,
    "adv_disk_fill": ZERO,
    "adv_shm_fill": ZERO,
    "adv_syscalls": COMPILED_NOT_TRAINED,
    # a stop right after an exercise: what was done before is graded (Grading.partial_credit_on_crash)
    "crash_die_after_compile": {"test_compile": 5.0, "test_fit": 0.0, "test_plot": 0.0},
    "crash_oom_after_compile": {"test_compile": 5.0, "test_fit": 0.0, "test_plot": 0.0},
    "crash_die_after_fit": {"test_compile": 5.0, "test_fit": 9.0, "test_plot": 0.0},
    "crash_oom_after_plot": {"test_compile": 5.0, "test_fit": 9.0, "test_plot": 6.0},
    "adv_exit": ZERO,
    "adv_kill_parent": ZERO,
    # SGD + MSE disguised as Adam + cross-entropy: capture.py's guard recorded the compile call with
    # the genuine classes, so the optimizer and loss checks fail (learning rate, AUC, accuracy are
    # real: 3 of 5); the grader's own re-evaluation fails the lying history and the hidden-test check.
    "adv_monkeypatch": {"test_compile": 3.0, "test_fit": 3.0, "test_plot": 6.0},
    "tmo_endless_loop": ZERO,
}


def tree_hashes(path: Path) -> dict[str, str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if "__pycache__" not in p.parts}


def hidden_needles(root: Path) -> list[str]:
    """A few messages that only the hidden test split holds."""
    sys.path.insert(0, str(root / "source" / ASSIGNMENT))
    import spam_data

    splits = spam_data.load_splits("sms", DATA_DIR, 1234)
    public = "\n".join([*splits["train"][0], *splits["val"][0]])
    return sorted((text for text in splits["test"][0] if len(text) > 60 and text not in public), key=len)[-5:]


class HostServer:
    """A TCP server on the host's 127.0.0.1 that counts who connects."""

    def __enter__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def __exit__(self, *exc):
        self.sock.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    enforcement = "auto"  # cgroups where the host has them; test_limit_cases_polled covers the polling path

    def limits(**overrides) -> list[str]:
        return [f"--Sandbox.{name}={value}" for name, value in {**LIMITS, "cgroups": enforcement, **overrides}.items()]

    root = make_course(tmp_path_factory.mktemp(f"sandbox_course_{enforcement}"))
    reference = source_answers(root)
    release = release_notebook(root)
    submit(root, "normal", fill(release, reference))
    nbgrader(root, "autograde", ASSIGNMENT, "--student", "normal", *limits())
    normal_scores = gradebook_scores(root, "normal")
    # (The kit's own autograder/ is attacked too, but only opened for writing, never written: the
    # adv_write report shows the open failed. Hashing it here would race with edits to the checkout.)
    protected = {
        "source": root / "source",
        "release": root / "release",
        "normal's submission": root / "submitted" / "normal",
        "config": root / "course_config.py",
    }
    before = {name: tree_hashes(folder) for name, folder in protected.items()}
    with HostServer() as server:
        target = Target(
            course=str(root),
            repo=str(REPO),
            data_dir=str(data_location()),
            other="normal",
            port=server.port,
            token=secrets.token_hex(6),
            needles=hidden_needles(root),
        )
        corpus = cases(target, reference)
        for case in [*corpus, endless_loop()]:
            submit(root, case.student, student_notebook(case, release, reference))
        with FreeDisk(root) as disk:  # the fillers write to the sandbox's tmpfs mounts, never to the host's disk
            batch = nbgrader(root, "autograde", ASSIGNMENT, "--student", "adv_*", *limits(), check=False)
            crashes = nbgrader(root, "autograde", ASSIGNMENT, "--student", "crash_*", *limits(), check=False)
        loop = nbgrader(
            root,
            "autograde",
            ASSIGNMENT,
            "--student",
            endless_loop().student,
            *limits(notebook_timeout=30, cell_timeout=600),
            check=False,
        )
    return SimpleNamespace(
        root=root,
        reference=reference,
        release=release,
        target=target,
        server=server,
        corpus={c.student: c for c in [*corpus, endless_loop()]},
        batch=batch,
        loop=loop,
        crashes=crashes,
        disk=disk,
        normal_scores=normal_scores,
        protected=protected,
        before=before,
        limits=limits,
        enforcement=enforcement,
    )


class FreeDisk:
    """The least free space seen on the course's filesystem while the batch runs (sampled every 0.1 s)."""

    def __init__(self, folder: Path):
        self.folder, self.least, self.before = folder, None, None
        self._stop = threading.Event()

    def __enter__(self):
        self.before = self.least = shutil.disk_usage(self.folder).free
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.1):
            self.least = min(self.least, shutil.disk_usage(self.folder).free)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def dropped_mb(self) -> float:
        return (self.before - self.least) / 2**20


def autograded(g, student: str) -> nbformat.NotebookNode:
    return nbformat.read(g.root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)


def cell(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def report(g, student: str, grade_id: str = "compile") -> dict:
    found = adv_lines(cell(autograded(g, student), grade_id).outputs)
    assert len(found) == 1, f"{student}: no ADV report in the {grade_id} cell"
    return found[0]


# --- the batch ---------------------------------------------------------------------------------------


def test_batch_goes_on_past_every_case(graded):
    assert graded.batch.returncode == 0, graded.batch.stderr[-3000:]
    assert graded.crashes.returncode == 0, graded.crashes.stderr[-3000:]
    assert graded.loop.returncode == 0, graded.loop.stderr[-3000:]
    expected = "watchdog" if cgroups.probe() is None else cgroups.probe().version
    for student in [*graded.corpus, "normal"]:
        assert summary(graded.root, student)["sandboxed"] is True
        stored = json.loads(
            (graded.root / ".kit" / "store" / f"{summary(graded.root, student)['key']}.json").read_text()
        )
        assert stored["limits_by"] == expected, student  # what enforced memory and processes


@pytest.mark.parametrize("student", [s for s in EXPECTED if s != "normal"])
def test_status_and_grade(graded, student):
    case = graded.corpus[student]
    result = summary(graded.root, student)
    assert result["status"] == case.status, result["message"]
    scores = gradebook_scores(graded.root, student)
    assert {k: scores[k] for k in EXPECTED[student]} == EXPECTED[student]
    if case.status != "ok":  # the student sees why in every test cell
        text = cell(autograded(graded, student), "test_compile").outputs[0]["text"]
        assert " ".join(result["message"][:50].split()) in " ".join(text.split())  # the report wraps lines


# The cases a limit stops, graded again with the cgroups off: the watchdog's polling must give each the same
# status and grade (tests/integration/sandbox/test_limits.py runs both paths on small programs).
POLLED = ("adv_memory_leak", "adv_huge_alloc", "adv_fork_bomb", "adv_output_flood", "adv_disk_fill")


def test_limit_cases_polled(graded):
    for student in POLLED:
        answers = {**graded.reference, **graded.corpus[student].answers}
        submit(graded.root, student.replace("adv_", "pol_"), fill(graded.release, answers))
    batch = nbgrader(
        graded.root, "autograde", ASSIGNMENT, "--student", "pol_*", *graded.limits(cgroups="off"), check=False
    )
    assert batch.returncode == 0, batch.stderr[-3000:]
    for student in POLLED:
        polled, kernel = summary(graded.root, student.replace("adv_", "pol_")), summary(graded.root, student)
        stored = json.loads((graded.root / ".kit" / "store" / f"{polled['key']}.json").read_text())
        assert stored["limits_by"] == "watchdog", student
        assert (polled["status"], polled["score"]) == (kernel["status"], kernel["score"]), polled["message"]
        assert gradebook_scores(graded.root, student.replace("adv_", "pol_")) == gradebook_scores(graded.root, student)


def test_disk_fillers_never_reach_the_host_disk(graded):
    """O_TMPFILE and unlinked files in the home and /dev/shm: each filler is stopped at its filesystem's size,
    and the host's free space never drops by that much (before the tmpfs home, 9.6 GB went in one run)."""
    for student, place in (("adv_disk_fill", "/home/student"), ("adv_shm_fill", "/dev/shm")):
        assert place in summary(graded.root, student)["message"]
    # Not 0: the other test worker and the grader write too (about 150 MB seen on a busy machine). A filler
    # writing to the host's disk would take GBs: it runs until the notebook timeout, the kernel never refusing.
    assert graded.disk.dropped_mb < 1024, f"free disk dropped by {graded.disk.dropped_mb:.0f} MB"


def test_denied_system_calls_fail_with_eperm_from_student_code(graded):
    calls = report(graded, "adv_syscalls")
    if calls == "not x86_64":
        pytest.skip("the case's system call numbers are x86_64's")
    assert calls == {**{name: "EPERM" for name in DENIED_CALLS}, "clone(CLONE_NEWUSER)": "EPERM"}


def test_every_run_stays_within_its_memory(graded):
    """The cgroup's own count of each run's peak: memory and tmpfs files together, never past memory_mb."""
    for student in graded.corpus:
        assert summary(graded.root, student)["peak_rss_mb"] <= LIMITS["memory_mb"] + 1, student


@pytest.mark.parametrize(
    "student", ["crash_die_after_compile", "crash_oom_after_compile", "crash_die_after_fit", "crash_oom_after_plot"]
)
def test_a_crash_names_the_stop_in_the_checks_it_prevented(graded, student):
    result = summary(graded.root, student)
    assert result["partial"] is True
    prevented = [c for c in result["checks"] if not c["passed"]]
    assert all("the run ended early" in c["message"] for c in prevented), prevented
    assert {c["cell"] for c in prevented} == {cell for cell, points in EXPECTED[student].items() if points == 0}


def test_normal_student_unchanged(graded):
    assert graded.normal_scores == {**EXPECTED["normal"], "analysis": 0.0}
    assert gradebook_scores(graded.root, "normal") == graded.normal_scores


def test_course_kit_and_host_unchanged(graded):
    for name, folder in graded.protected.items():
        assert tree_hashes(folder) == graded.before[name], f"{name} changed"
    with sqlite3.connect(graded.root / "gradebook.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    token = graded.target.token
    assert not list(graded.root.glob(f"pwned-{token}*"))
    assert not list(Path(tempfile.gettempdir()).glob(f"pwned-{token}*")), "planted code ran on the host"
    assert not list(Path(sysconfig_purelib()).glob(f"pwned_{token}*"))


def sysconfig_purelib() -> str:
    import sysconfig

    return sysconfig.get_paths()["purelib"]


# --- what each case saw from inside ------------------------------------------------------------------


def test_snoop_sees_nothing_hidden(graded):
    seen = report(graded, "adv_snoop")
    assert all(
        result in ("FileNotFoundError", "PermissionError", "ModuleNotFoundError") for result in seen["reads"].values()
    ), seen["reads"]
    listings = seen["listings"]
    assert listings[str(graded.root)] == "FileNotFoundError"
    assert listings[str(REPO)] in ([".venv"], "FileNotFoundError")  # the venv inside the repo, nothing else
    assert listings["/home"] == ["student"]
    assert listings["/opt/data"] == ["public_splits.tsv"]
    assert seen["grader_files"] == []
    assert seen["found"] == [] and seen["scanned"] > 1000  # it searched, and no hidden message is visible


def test_writes_outside_scratch_fail(graded):
    results = report(graded, "adv_write")
    assert results.pop("private /tmp") == "WROTE"  # its own tmpfs
    assert all(outcome != "WROTE" for outcome in results.values()), results


def test_no_network(graded):
    results = report(graded, "adv_network")
    assert results["host 127.0.0.1 server"] == "ConnectionRefusedError"
    assert results["public address"] in ("OSError", "TimeoutError")
    assert results["dns"] == "gaierror"
    assert results["interfaces"] == ["lo"]
    assert graded.server.connections == 0


def test_symlinked_evidence_is_not_followed(graded):
    text = nbformat.writes(autograded(graded, "adv_symlink")) + str(summary(graded.root, "adv_symlink"))
    assert "SQLite format 3" not in text and "root:x:0:0" not in text
    compile_report = cell(autograded(graded, "adv_symlink"), "test_compile").outputs[0]["text"]
    assert "did not run to its end" in compile_report


def test_cell_timeout_interrupts_and_the_run_goes_on(graded):
    errors = [
        (o.ename, o.evalue)
        for o in cell(autograded(graded, "adv_cell_timeout"), "fit").outputs
        if o.get("output_type") == "error"
    ]
    assert errors == [("CellTimeout", STOPPED["adv_cell_timeout"])]  # never a bare KeyboardInterrupt
    recorded = summary(graded.root, "adv_cell_timeout")["cell_errors"]
    assert {"cell": "fit", "ename": "CellTimeout", "test": False} in recorded
    assert all(e["ename"] not in ("KeyboardInterrupt", "CellTimeoutError") for e in recorded), recorded


# How each run that ended badly is told, naming the cell and the limit (LIMITS, and the loop's own).
STOPPED = {
    "adv_cell_timeout": "cell `fit` stopped after 60 s (Sandbox.cell_timeout)",
    "adv_exit": "the Python kernel died while cell `compile` was running",
    "tmo_endless_loop": "stopped after 30 s (Sandbox.notebook_timeout) while cell `compile` was running",
}


@pytest.mark.parametrize("student", STOPPED)
def test_timeouts_and_kernel_deaths_are_told_everywhere(graded, student):
    from rich.console import Console

    from autograder.cli import grades_table
    from autograder.course.exports import gradescope_results
    from autograder.course.gradebook import Row
    from autograder.course.report import attention
    from autograder.model import PARTIAL_NOTE, Status, Summary

    said = STOPPED[student]
    found = Summary.from_dict(summary(graded.root, student))
    assert found.message == said and found.status.value == graded.corpus[student].status
    nb = autograded(graded, student)  # what formgrader and the feedback show the student
    for test_cell in ("test_compile", "test_fit", "test_plot"):
        assert f"{found.status.student}: {said}" in " ".join(cell(nb, test_cell).outputs[0]["text"].split())
    assert gradescope_results(found, set(), "visible")["output"] == f"{found.status.gradescope}\n{said}"
    reason = f"{found.status.instructor}, {PARTIAL_NOTE}" if found.partial else found.status.instructor
    assert {"student": student, "reason": reason, "detail": said} in attention({student: found})
    console = Console(record=True, width=400, color_system=None)
    console.print(grades_table([Row.of_summary(student, Status.GRADED, found, [], executed=True)], "t"))
    table = console.export_text()
    assert found.status.value in table and said in table
    if student == "adv_exit":
        errors = [(o.ename, o.evalue) for o in cell(nb, "compile").outputs if o.get("output_type") == "error"]
        assert errors == [("KernelDied", said)]


def test_every_run_the_grader_stopped_names_the_cell_it_stopped_in(graded):
    for student in ("adv_memory_leak", "adv_fork_bomb", "adv_output_flood", "adv_disk_fill", "adv_kill_parent"):
        assert "while cell `compile` was running" in summary(graded.root, student)["message"], student


def test_huge_allocation_fails_inside(graded):
    assert report(graded, "adv_huge_alloc") == "MemoryError"


def test_output_is_cut(graded):
    path = graded.root / "autograded" / "adv_output_flood" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert path.stat().st_size < 1_000_000
    assert "[output cut" in cell(autograded(graded, "adv_output_flood"), "compile").outputs[-1]["text"]


def test_monkeypatching_does_not_reach_the_grader(graded):
    checks = {c["id"]: c["passed"] for c in summary(graded.root, "adv_monkeypatch")["checks"]}
    assert checks["test_optimizer_is_adam"] is False  # the SGD named Adam is not the guard's Adam
    assert checks["test_loss_is_binary_crossentropy"] is False  # recorded at the call: "mse"
    assert checks["test_reported_val_auc_is_honest"] is False
    assert checks["test_hidden_auc"] is False
    assert checks["test_history_type"] is True  # the real History object, whatever isinstance said


# --- without a sandbox -------------------------------------------------------------------------------


def path_without_bwrap(folder: Path, fake_bwrap: str | None = None) -> str:
    """A PATH with the venv, prlimit and taskset, no bubblewrap (or a fake one that fails)."""
    folder.mkdir(parents=True, exist_ok=True)
    for tool in ("prlimit", "taskset", "setpriv"):
        if shutil.which(tool):
            (folder / tool).symlink_to(shutil.which(tool))
    if fake_bwrap is not None:
        (folder / "bwrap").write_text(fake_bwrap)
        (folder / "bwrap").chmod(0o755)
    return f"{folder}:{Path(sys.executable).parent}"


def test_same_grade_without_the_sandbox(graded, tmp_path):
    submit(graded.root, "normal_open", fill(graded.release, graded.reference))
    env = {"PATH": path_without_bwrap(tmp_path / "bin")}
    nbgrader(graded.root, "autograde", ASSIGNMENT, "--student", "normal_open", *graded.limits(mode="none"), env=env)
    inside, outside = summary(graded.root, "normal"), summary(graded.root, "normal_open")
    assert (inside["sandboxed"], outside["sandboxed"]) == (True, False)
    assert outside["status"] == "ok"

    def per_check(result):
        return [(c["id"], c["passed"], c["score"], c.get("values")) for c in result["checks"]]

    assert per_check(outside) == per_check(inside)
    assert outside.get("metrics") == inside.get("metrics")
    assert gradebook_scores(graded.root, "normal_open") == graded.normal_scores
    assert "graded without the sandbox" in cell(autograded(graded, "normal_open"), "test_fit").outputs[0]["text"]
    for student in ("normal", "normal_open"):  # the kernel's inline backend keeps the three training curves
        outputs = cell(autograded(graded, student), "plot_history").outputs
        shown = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(shown) == 3, f"{student}: {len(shown)} figures in the plot_history cell"


@pytest.mark.parametrize(
    "fake_bwrap, message",
    [
        (None, "bubblewrap (bwrap) is not installed"),
        (
            "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
            "cannot create a sandbox here",
        ),
    ],
)
def test_grading_stops_without_a_sandbox(graded, tmp_path, fake_bwrap, message):
    students = ["nosandbox_a", "nosandbox_b"]
    for student in students:
        submit(graded.root, student, fill(graded.release, graded.reference))
    env = {"PATH": path_without_bwrap(tmp_path / "bin", fake_bwrap)}
    proc = nbgrader(graded.root, "autograde", ASSIGNMENT, "--student", "nosandbox_*", check=False, env=env)
    log = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert log.count("SandboxUnavailable") >= len(students) and message in log
    for student in students:
        assert not (graded.root / ".kit" / "results" / ASSIGNMENT / f"{student}.json").exists()
        assert not (graded.root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").exists()


# --- the sandbox itself, with bwrap --------------------------------------------------------------------------------


def run_inside(
    code: str,
    settings: Sandbox,
    tmp: Path,
    strategy: str | None = None,
    python_roots=None,
    grader_uid: int | None = None,
    prefix: tuple = (),
):
    """Run ``python -c code`` in a sandbox made like the grader makes one (``prefix``: run bwrap under it)."""
    strategy = strategy or host.check_available(settings)
    tmp.mkdir(parents=True, exist_ok=True)
    data = tmp / "data.tsv"
    data.write_text("public\n")
    with Slot() as slot:
        launch = bwrap.command(
            RunSpec.make(settings, strategy, slot, {}, data, {}, grader_uid=grader_uid), python_roots=python_roots
        )
        try:
            python = sys.executable if python_roots is None else "/usr/bin/python3"
            return subprocess.run(
                [*prefix, *launch.argv, python, "-c", code],
                capture_output=True,
                text=True,
                timeout=120,
                pass_fds=launch.fds,
            )
        finally:
            launch.close()


FORK_UNTIL_REFUSED = """
import os, time
count = 0
try:
    while count < 500:
        if os.fork() == 0:
            time.sleep(3)
            os._exit(0)
        count += 1
except OSError as exc:
    print("refused after", count, type(exc).__name__)
"""


@pytest.mark.skipif(not bwrap.bwrap_path(), reason="needs bubblewrap")
def test_sandbox_view_and_process_limit(tmp_path):
    settings = Sandbox(max_processes=40)
    code = (
        f"import os, json; print(json.dumps({{'uid': os.getuid(), 'repo': sorted(os.listdir({str(REPO)!r})) "
        f"if os.path.isdir({str(REPO)!r}) else None, 'root': os.listdir('/'), 'home': os.listdir('/home'), "
        "'cpus': len(os.sched_getaffinity(0)), 'threads': os.environ['OMP_NUM_THREADS']}))"
    )
    proc = run_inside(code, settings, tmp_path / "view")
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["repo"] in (None, [".venv"])
    assert seen["home"] == ["student"]
    assert seen["cpus"] == min(settings.threads, len(os.sched_getaffinity(0))) and seen["threads"] == str(
        settings.threads
    )
    if os.geteuid() == 0:
        assert seen["uid"] != 0  # RLIMIT_NPROC means nothing to uid 0
    forks = run_inside(FORK_UNTIL_REFUSED, settings, tmp_path / "fork")
    assert "refused after" in forks.stdout and "BlockingIOError" in forks.stdout, forks.stdout + forks.stderr
    assert int(forks.stdout.split()[2]) < settings.max_processes


@pytest.mark.skipif(
    os.geteuid() != 0 or not bwrap.bwrap_path() or not os.path.exists("/usr/bin/python3"),
    reason="needs root (to become nobody), bubblewrap and a system python",
)
def test_userns_strategy_as_a_normal_user():
    """What a non-root grader gets: unprivileged bwrap, RLIMIT_NPROC counted in its user namespace.

    Run as nobody with the system Python (the kit's venv may sit under /root, closed to others).
    """
    nobody = 65534
    settings = Sandbox(max_processes=40)
    code = FORK_UNTIL_REFUSED + "\nprint('uid', os.getuid(), 'sees', sorted(os.listdir('/home')))"
    as_nobody = ("setpriv", f"--reuid={nobody}", f"--regid={nobody}", "--clear-groups", "--")
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        proc = run_inside(code, settings, Path(tmp), "userns", python_roots=[], grader_uid=nobody, prefix=as_nobody)
    assert "BlockingIOError" in proc.stdout, proc.stdout + proc.stderr
    assert int(proc.stdout.split()[2]) < settings.max_processes
    assert f"uid {nobody} sees ['student']" in proc.stdout
