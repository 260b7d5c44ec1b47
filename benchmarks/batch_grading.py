"""Batch grading: plain nbgrader vs the kit, in wall time and in core-seconds.

Two classes of N submissions (default 8) are built from the release like the
tests' examples:

- **all-unique**: mostly the reference, some typical mistakes, every notebook's
  code different (a numbered comment is not enough: the kit ignores comments,
  so each one gets a different ``learning_rate`` literal of the same value);
- **realistic**: the same, except that ``IDENTICAL_SHARE`` of the students
  (declared below: a quarter) hand in code identical to a classmate's: half of
  them the classmate's code with their own comments, blank lines and Markdown
  answer, half a byte-for-byte copy of the file.

Each is graded in a fresh copy of the course (own gradebook, empty result store)

1. by plain ``nbgrader autograde`` with nbgrader's own Execute pipeline (the
   baseline: no sandbox, no hidden checks, serial, TensorFlow free to use
   every core);
2. by ``spamkit grade --workers 1`` (all-unique class only);
3. by ``spamkit grade`` (one worker per core, ``Batch.n_workers``).

A bare nbclient execution of the reference notebook, with one thread and with
every core, is the floor a submission cannot go below.

What is measured for each run:

- wall time, and the load average before and after;
- the floor: the run's core-seconds spread over every core with none idle,
  against plain nbgrader's wall time (no schedule of that work can beat it);
- core-seconds: every command runs in a cgroup of its own (cpuacct, when this
  process may make one), whose usage is the exact CPU time of the whole run;
  a sampler (every ``--sample`` seconds) attributes it to roles by command
  line: the sandboxed kernels (``ipykernel_launcher``), the runner, sandbox
  wrappers, check processes, Dask workers, the client (the command's own
  process: nbgrader's or spamkit's, with Dask's scheduler in it). What the
  sampler missed (processes that lived between two samples, the last moments
  of those that exited) is shown as "unattributed";
- peak RSS of each Dask worker with its children, of the whole tree;
- the kit's timers per submission (sandbox, checks) from its result store, and
  the client's serial seconds per submission (preparing a notebook, writing
  its grade) from the batch log.

    python benchmarks/batch_grading.py [--students 8] [--skip RUN ...] [--json out.json]

Run it on a quiet machine (it waits for one, see ``--max-load``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import nbformat
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from autograder.course import examples  # noqa: E402

ASSIGNMENT = "spam_transformer"
NBGRADER_PIPELINE = [  # nbgrader 0.9's default Autograde.autograde_preprocessors
    "nbgrader.preprocessors.Execute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
MIX = ["reference"] * 14 + [
    "wrong-loss",
    "wrong-loss",
    "no-validation",
    "no-validation",
    "fabricated-history",
    "broken",
]
IDENTICAL_SHARE = 0.25  # realistic class: share of students whose code is identical to a classmate's
GROUPS = {  # cells of the notebook -> what they do
    "setup": "imports (TensorFlow, Keras) + seed",
    "load_data": "data prep",
    "tokenize": "data prep",
    "model": "model build",
    "compile": "compile",
    "fit": "training (1 epoch)",
    "plot_history": "plots",
}
ROLES = ("kernel", "runner", "sandbox wrappers", "check processes", "dask workers", "client", "other")
KIT_OWN = ("runner", "sandbox wrappers", "check processes", "dask workers", "client", "other", "unattributed")


def env(extra: dict | None = None) -> dict:
    out = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out.setdefault("SPAM_LAB_DATA_DIR", str(REPO.parent / "shared" / "data"))
    out.update(extra or {})
    return out


WAITED = [0.0]  # seconds waited for a quiet machine so far (one budget for the whole benchmark)


def wait_for_quiet(max_load: float, max_wait: float) -> None:
    """Wait until the 1-minute load is below max_load: up to max_wait seconds in all, at least 2 min per run."""
    deadline = time.monotonic() + max(120.0, max_wait - WAITED[0])
    started = time.monotonic()
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        print(f"  waiting for a quiet machine: load {os.getloadavg()[0]:.2f}", flush=True)
        time.sleep(30)
    WAITED[0] += time.monotonic() - started


# --- measuring a process tree -------------------------------------------------------


def role(proc: psutil.Process, root_pid: int) -> str:
    if proc.pid == root_pid:
        return "client"
    try:
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return "other"
    if "ipykernel_launcher" in cmd:
        return "kernel"
    if "runner.py" in cmd or "bare.py" in cmd:
        return "runner"
    if "check_process" in cmd or ("pytest" in cmd and "checks" in cmd):
        return "check processes"
    if "spawn_main" in cmd and "resource_tracker" not in cmd:
        return "dask workers"
    if any(tool in cmd.split(" ", 1)[0] for tool in ("bwrap", "setpriv", "prlimit", "taskset", "sh")):
        return "sandbox wrappers"
    return "other"


class CpuCgroup:
    """A cpuacct cgroup (v1, or v2's cpu.stat) for one measured command; None where none can be made."""

    def __init__(self, name: str):
        self.path = None
        self.v2 = False
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "cpuacct" in controllers.split(","):
                candidate = Path("/sys/fs/cgroup/cpuacct") / path.lstrip("/") / name
                break
        else:
            candidate = None
        try:
            if candidate is not None:
                candidate.mkdir()
                self.path = candidate
        except OSError:
            self.path = None

    def wrap(self, args: list[str]) -> list[str]:
        if self.path is None:
            return args
        return ["/bin/sh", "-c", f'echo $$ > {self.path}/cgroup.procs && exec "$@"', "sh", *args]

    def seconds(self) -> float | None:
        if self.path is None:
            return None
        return int((self.path / "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        if self.path is not None:
            for _ in range(50):
                try:
                    self.path.rmdir()
                    return
                except OSError:
                    time.sleep(0.1)


class Meter:
    """Samples a process tree: CPU seconds per role (last value seen per process) and peak RSS."""

    def __init__(self, pid: int, every: float):
        self.pid, self.every = pid, every
        self.cpu: dict[tuple, tuple[str, float]] = {}  # (pid, create_time) -> (role, cpu seconds)
        self.tree_peak = self.worker_peak = self.main_peak = self.kernel_peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss(procs) -> float:
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _sample(self, root: psutil.Process) -> None:
        children = root.children(recursive=True)
        for p in [root, *children]:
            try:
                with p.oneshot():
                    key = (p.pid, p.create_time())
                    times = p.cpu_times()
                    if key not in self.cpu:
                        self.cpu[key] = (role(p, self.pid), 0.0)
                    self.cpu[key] = (self.cpu[key][0], times.user + times.system)
            except psutil.Error:
                pass
        self.tree_peak = max(self.tree_peak, self._rss([root, *children]))
        self.main_peak = max(self.main_peak, self._rss([root]))
        for child in children:
            try:
                cmd = " ".join(child.cmdline())
                if "spawn_main" in cmd and "resource_tracker" not in cmd:
                    self.worker_peak = max(self.worker_peak, self._rss([child, *child.children(recursive=True)]))
                if "ipykernel_launcher" in cmd:
                    self.kernel_peak = max(self.kernel_peak, self._rss([child]))
            except psutil.Error:
                pass

    def _run(self):
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                self._sample(root)
            except psutil.Error:
                pass
            self._stop.wait(self.every)

    def by_role(self) -> dict[str, float]:
        out = dict.fromkeys(ROLES, 0.0)
        for name, seconds in self.cpu.values():
            out[name] += seconds
        return out

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_measured(args: list[str], cwd: Path, every: float, tag: str, extra_env: dict | None = None) -> dict:
    load_before = os.getloadavg()[0]
    print(f"  {tag}: load average before {load_before:.2f}", flush=True)
    cgroup = CpuCgroup(f"spamkit-bench-{os.getpid()}-{tag}")
    start = time.monotonic()
    proc = subprocess.Popen(
        cgroup.wrap(args), cwd=cwd, env=env(extra_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    with Meter(proc.pid, every) as meter:
        out, _ = proc.communicate()
    wall = time.monotonic() - start
    total = cgroup.seconds()
    cgroup.remove()
    load_after = os.getloadavg()[0]
    print(f"  {tag}: {wall:.0f} s wall, load average after {load_after:.2f}", flush=True)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{out[-3000:]}")
    roles = meter.by_role()
    sampled = sum(roles.values())
    roles["unattributed"] = max(0.0, (total or sampled) - sampled)
    return {
        "wall": wall,
        "load_before": load_before,
        "load_after": load_after,
        "cpu_total": total or sampled,
        "cpu_exact": total is not None,
        "cpu": roles,
        "tree_peak_mb": meter.tree_peak,
        "worker_peak_mb": meter.worker_peak,
        "client_peak_mb": meter.main_peak,
        "kernel_peak_mb": meter.kernel_peak,
        "output_tail": out[-2000:],
    }


# --- the classes --------------------------------------------------------------------


def unique_answers(i: int, name: str, reference: dict) -> dict:
    """Student i's cells: the variant's, with code of its own (a learning-rate literal no one else writes)."""
    answers = {**reference, **examples.VARIANTS[name]}
    answers["compile"] = (
        f"learning_rate = {1e-3 * (1 + i * 1e-12)!r}  # student {i:02d} ({name})\n" + answers["compile"]
    )
    answers["analysis"] = f"Student {i:02d}: the validation curve follows the training curve."
    return answers


def recommented(source: str, i: int) -> str:
    """The same code with other comments and blank lines (what a classmate's copy often looks like)."""
    lines = [f"# my own version ({i})", ""]
    for line in source.splitlines():
        code = line.split("  #")[0].rstrip() if "  #" in line and "'" not in line and '"' not in line else line
        lines += [code, ""] if code.strip() else [code]
    return "\n".join(lines) + "\n"


def make_course(root: Path, n: int, identical_share: float) -> tuple[Path, dict]:
    """A released course with n submissions; returns it and {student: student whose code it repeats}."""
    from autograder import api

    api.release(api.open_course(root, create=True), force=True)
    release = root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source = root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    released = nbformat.read(release, as_version=4)
    reference = examples.source_answers(source)
    n_twins = round(n * identical_share)
    unique = n - n_twins
    names, twins = {}, {}
    for i in range(unique):
        name = MIX[i % len(MIX)]
        student = f"s{i:02d}-{name}"
        names[i] = student
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(examples.fill(released, unique_answers(i, name, reference)), folder / f"{ASSIGNMENT}.ipynb")
    for k in range(n_twins):
        j = k % unique
        original = root / "submitted" / names[j] / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        kind = "recommented" if k % 2 == 0 else "copy"
        student = f"t{k:02d}-{kind}-of-s{j:02d}"
        folder = root / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        if kind == "copy":
            shutil.copy(original, folder / f"{ASSIGNMENT}.ipynb")
        else:
            nb = nbformat.read(original, as_version=4)
            for cell in nb.cells:
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                if grade_id in ("compile", "fit", "plot_history"):
                    cell.source = recommented(cell.source, k)
                if grade_id == "analysis":
                    cell.source = f"Twin {k}: in my own words, the model generalises."
            nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
        twins[student] = names[j]
    return root, twins


def plain_nbgrader_course(kit_course: Path, root: Path) -> Path:
    shutil.copytree(kit_course, root)
    (root / "gradebook.db").unlink()
    config = (root / "nbgrader_config.py").read_text()
    config += (
        "\n# benchmark baseline: nbgrader's own pipeline (Execute; no sandbox, no hidden checks)\n"
        f"c.Autograde.autograde_preprocessors = {NBGRADER_PIPELINE!r}\n"
    )
    (root / "nbgrader_config.py").write_text(config)
    subprocess.run(
        [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"],
        cwd=root,
        env=env(),
        check=True,
        capture_output=True,
    )
    return root


# --- bare nbclient -------------------------------------------------------------------

BARE = r"""
import json, sys, time
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
start = time.monotonic()
client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}})
client.execute()
wall = time.monotonic() - start
nbformat.write(nb, sys.argv[3])
print(json.dumps({"wall": wall}))
"""


def bare_runs(course: Path, runs: int, threads: int, every: float) -> list[dict]:
    out = []
    student = sorted((course / "submitted").glob("s*-reference"))[0]
    limits = {
        k: str(threads)
        for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    }
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="bare-") as tmp:
            work = Path(tmp)
            shutil.copy(student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", work / "in.ipynb")
            shutil.copy(course / "source" / ASSIGNMENT / "spam_data.py", work / "spam_data.py")
            (work / "bare.py").write_text(BARE)
            measured = run_measured(
                [sys.executable, str(work / "bare.py"), str(work / "in.ipynb"), str(work), str(work / "out.ipynb")],
                work,
                every,
                f"bare-{threads}t",
                {**limits, "MPLBACKEND": "agg"},
            )
            executed = nbformat.read(work / "out.ipynb", as_version=4)
            measured["nbclient_wall"] = json.loads(measured.pop("output_tail").strip().splitlines()[-1])["wall"]
            measured["cells"] = cell_seconds(executed)
            out.append(measured)
    return out


# --- where the time goes -------------------------------------------------------------


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def cell_seconds(nb) -> dict[str, float]:
    """Seconds per cell (by grade_id), from nbclient's recorded timings."""
    out = {}
    for index, cell in enumerate(nb.cells):
        timing = cell.metadata.get("execution") or {}
        begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type == "code" and begin and end:
            name = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell{index}"
            out[name] = _ts(end) - _ts(begin)
    return out


def breakdown(cells: dict[str, float], total_run: float) -> dict[str, float]:
    groups: dict[str, float] = {}
    for name, seconds in cells.items():
        group = GROUPS.get(name, "self-check cells" if name.startswith("test_") else "other cells")
        groups[group] = groups.get(group, 0.0) + seconds
    # not in the notebook's own cells: sandbox and runner start, kernel start, and in the kit the
    # guard cell before the student's cells (it imports Keras, so TensorFlow's import moves here)
    # and the capture cell after them
    groups["kernel start + runner (+ kit guard/capture cells)"] = max(0.0, total_run - sum(cells.values()))
    return groups


def kit_timings(course: Path) -> dict:
    results = [json.loads(p.read_text()) for p in (course / ".kit" / "store").glob("*.json")]
    per = []
    for r in results:
        cells = cell_seconds(nbformat.reads(r["executed"], as_version=4)) if r.get("executed") else {}
        per.append(
            {
                "seconds": r["seconds"],
                "execute": r["execute_seconds"],
                "checks": r["check_seconds"],
                "sandbox_peak_mb": r["peak_rss_mb"],
                "sandbox_cpu": r.get("cpu_seconds"),
                "groups": breakdown(cells, r["execute_seconds"]),
            }
        )
    events = []
    log = course / ".kit" / "log" / f"{ASSIGNMENT}.jsonl"
    if log.is_file():
        events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    prepared = [e["seconds"] for e in events if e["event"] == "prepared" and "seconds" in e]
    written = [e["seconds"] for e in events if e["event"] == "autograded" and "seconds" in e]
    reused = [e for e in events if e["event"] == "autograded" and e.get("reused_from")]
    summaries = [json.loads(p.read_text()) for p in (course / ".kit" / "results" / ASSIGNMENT).glob("*.json")]
    return {
        "n": len(per),
        "per": per,
        "prepare_seconds": prepared,
        "write_seconds": written,
        "reused": len(reused),
        "runs": len([e for e in events if e["event"] == "executed"]),
        "scores": {p.get("key", "")[:8]: p.get("score") for p in summaries},
    }


def mean(values) -> float:
    values = list(values)
    return statistics.fmean(values) if values else float("nan")


# --- main ------------------------------------------------------------------------------

RUNS = ("bare", "nbgrader", "kit1", "kitN", "nbgrader-realistic", "kitN-realistic")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--bare-runs", type=int, default=3)
    parser.add_argument("--skip", action="append", default=[], choices=RUNS)
    parser.add_argument("--only", action="append", default=[], choices=RUNS)
    parser.add_argument("--sample", type=float, default=0.5, help="seconds between CPU samples")
    parser.add_argument("--max-load", type=float, default=0.5, help="wait for a 1-minute load below this")
    parser.add_argument(
        "--max-wait", type=float, default=1200, help="seconds to wait for it in all (2 min per run after)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    wanted = [r for r in RUNS if r not in args.skip and (not args.only or r in args.only)]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spamkit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    cores = len(os.sched_getaffinity(0))
    print(
        f"Working in {work}; {args.students} submissions; {cores} CPUs; kit at {REPO}; "
        f"load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )

    unique, _ = make_course(work / "base-unique", args.students, 0.0)
    realistic, twins = make_course(work / "base-realistic", args.students, IDENTICAL_SHARE)
    report: dict = {
        "students": args.students,
        "cpus": cores,
        "repo": str(REPO),
        "runs": {},
        "identical_share": IDENTICAL_SHARE,
        "twins": twins,
    }
    from autograder.settings import Batch, local_workers

    n_default = local_workers(Batch())
    report["n_default"] = n_default

    if "bare" in wanted:
        report["bare"] = {}
        for threads in sorted({1, cores}):
            wait_for_quiet(args.max_load, args.max_wait)
            report["bare"][threads] = bare_runs(unique, args.bare_runs, threads, args.sample)
            print(
                f"bare nbclient, {threads} thread(s): {[round(b['wall'], 1) for b in report['bare'][threads]]} s",
                flush=True,
            )
    plan = [
        ("nbgrader", unique, None),
        ("kit1", unique, 1),
        ("kitN", unique, n_default),
        ("nbgrader-realistic", realistic, None),
        ("kitN-realistic", realistic, n_default),
    ]
    for tag, base, workers in plan:
        if tag not in wanted:
            continue
        wait_for_quiet(args.max_load, args.max_wait)
        if workers is None:
            course = plain_nbgrader_course(base, work / tag)
            run = run_measured([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], course, args.sample, tag)
        else:
            course = work / tag
            shutil.copytree(base, course)
            run = run_measured(
                [sys.executable, "-m", "autograder", "grade", "--workers", str(workers), "--no-progress"],
                course,
                args.sample,
                tag,
            )
            run["workers"] = workers
            run["timings"] = kit_timings(course)
        report["runs"][tag] = run
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str))

    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
    return 0


def print_report(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    n, cores, n_default = report["students"], report["cpus"], report["n_default"]
    runs = report["runs"]
    names = {
        "nbgrader": "plain nbgrader autograde, all-unique",
        "kit1": "kit, 1 Dask worker, all-unique",
        "kitN": f"kit, {n_default} Dask workers, all-unique",
        "nbgrader-realistic": "plain nbgrader autograde, realistic",
        "kitN-realistic": f"kit, {n_default} Dask workers, realistic",
    }
    table = Table(
        title=f"Grading {n} submissions ({cores} CPUs; realistic class: "
        f"{len(report['twins'])} of {n} repeat a classmate's code)"
    )
    for col in (
        "run",
        "wall (s)",
        "per sub (s)",
        "vs plain",
        "floor vs plain",
        "core-s total",
        "kernel core-s/sub",
        "kit-own core-s/sub",
        "kit-own % of machine",
        "peak RSS (MB)",
        "load before/after",
    ):
        table.add_column(col, justify="left" if col == "run" else "right")
    for tag, run in runs.items():
        plain = runs.get("nbgrader-realistic" if tag.endswith("realistic") else "nbgrader", {}).get("wall")
        kernel = run["cpu"]["kernel"]
        own = run["cpu_total"] - kernel
        # worker processes (older kits, external workers) or the batch process that holds the workers as threads
        peak = (
            f"worker {run['worker_peak_mb']:.0f}, all {run['tree_peak_mb']:.0f}"
            if run.get("worker_peak_mb")
            else f"batch process {run['client_peak_mb']:.0f}, all {run['tree_peak_mb']:.0f}"
            if "workers" in run
            else f"all {run['tree_peak_mb']:.0f}"
        )
        table.add_row(
            names[tag],
            f"{run['wall']:.0f}",
            f"{run['wall'] / n:.1f}",
            f"{run['wall'] / plain:.2f}x" if plain else "",
            # the run's CPU time spread over every core with none idle: no schedule can do better
            f"{run['cpu_total'] / cores / plain:.2f}x" if plain else "",
            f"{run['cpu_total']:.0f}" + ("" if run["cpu_exact"] else "~"),
            f"{kernel / n:.1f}",
            f"{own / n:.1f}",
            f"{100 * own / (run['wall'] * cores):.1f} %",
            peak,
            f"{run['load_before']:.2f} / {run['load_after']:.2f}",
        )
    console.print(table)

    bare = report.get("bare") or {}
    bare_wall = {}
    for threads, runs_ in bare.items():
        walls = [b["wall"] for b in runs_]
        bare_wall[int(threads)] = statistics.median(walls)
        middle = sorted(runs_, key=lambda b: b["wall"])[len(runs_) // 2]
        print(
            f"bare nbclient run of the reference, {threads} thread(s): median {bare_wall[int(threads)]:.1f} s wall "
            f"(runs {', '.join(format(w, '.1f') for w in walls)}); kernel {middle['cpu']['kernel']:.1f} core-s, "
            f"nbclient process {middle['cpu']['runner'] + middle['cpu']['client']:.1f}, total "
            f"{middle['cpu_total']:.1f}; kernel peak RSS {max(b['kernel_peak_mb'] for b in runs_):.0f} MB"
        )

    t = Table(title="Where the CPU goes: core-seconds per submission, by role")
    t.add_column("role")
    for tag in runs:
        t.add_column(tag, justify="right")
    for name in (*ROLES, "unattributed"):
        t.add_row(name, *[f"{run['cpu'][name] / n:.2f}" for run in runs.values()])
    t.add_row("total", *[f"{run['cpu_total'] / n:.2f}" for run in runs.values()])
    console.print(t)

    timing = runs.get("kit1", runs.get("kitN", {})).get("timings")
    if timing and timing["per"]:
        per = timing["per"]
        t = Table(title="Where a kit submission's wall time goes (kit timers, mean over the 1-worker run)")
        t.add_column("part")
        t.add_column("seconds", justify="right")
        groups: dict[str, list] = {}
        for p in per:
            for g, s in p["groups"].items():
                groups.setdefault(g, []).append(s)
        for g, values in sorted(groups.items(), key=lambda kv: -mean(kv[1])):
            t.add_row(f"notebook run: {g}", f"{sum(values) / len(per):.1f}")
        t.add_row("notebook run in the sandbox (total)", f"{mean(p['execute'] for p in per):.1f}")
        if any(p.get("sandbox_cpu") is not None for p in per):
            t.add_row(
                "  its CPU (sandbox cgroup), core-s",
                f"{mean(p['sandbox_cpu'] for p in per if p.get('sandbox_cpu') is not None):.1f}",
            )
        t.add_row("hidden checks (warm check process: re-evaluate, pytest)", f"{mean(p['checks'] for p in per):.1f}")
        t.add_row("submission total (kit timer)", f"{mean(p['seconds'] for p in per):.1f}")
        kit1 = runs.get("kit1")
        for threads, wall in sorted(bare_wall.items()):
            t.add_row(f"bare nbclient run, {threads} thread(s)", f"{wall:.1f}")
        if kit1 and bare_wall:
            ref = bare_wall.get(max(bare_wall))
            t.add_row("1 worker: batch wall per submission / bare (all cores)", f"{kit1['wall'] / n / ref:.2f}x")
        console.print(t)
        print(
            f"sandbox peak memory per submission (kit's report): max {max(p['sandbox_peak_mb'] for p in per):.0f} MB, "
            f"mean {mean(p['sandbox_peak_mb'] for p in per):.0f} MB"
        )

    t = Table(title="The client: serial seconds per submission")
    for col in ("run", "client CPU s/sub", "prepare s/sub (log)", "write s/sub (log)", "runs", "reused"):
        t.add_column(col, justify="left" if col == "run" else "right")
    for tag, run in runs.items():
        if "timings" not in run:
            continue
        tm = run["timings"]
        t.add_row(
            tag,
            f"{run['cpu']['client'] / n:.2f}",
            f"{mean(tm['prepare_seconds']):.2f}",
            f"{mean(tm['write_seconds']):.2f}",
            str(tm["runs"]),
            str(tm["reused"]),
        )
    console.print(t)


if __name__ == "__main__":
    sys.exit(main())
