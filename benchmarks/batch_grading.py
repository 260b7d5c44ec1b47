"""Batch grading: plain nbgrader vs the kit on 1 and on all Dask workers.

The same N submissions (default 20, built from the release like the tests'
examples: mostly the reference, some typical mistakes, each one unique) are
graded

1. by plain ``nbgrader autograde`` with nbgrader's own Execute pipeline (the
   baseline: no sandbox, no hidden checks, serial, TensorFlow free to use
   every core);
2. by ``spamkit grade --workers 1`` (sandbox + hidden checks, one Dask worker);
3. by ``spamkit grade`` (one worker per core, ``Batch.n_workers``);

each in a fresh copy of the course (own gradebook, empty result store). A
bare nbclient execution of the reference notebook (same thread limit as the
sandbox) is the floor a submission cannot go below. Printed: wall times and
ratios, the kit's per-submission overhead over the bare run and where the
time goes (from the cell timings nbclient records and the kit's own timers),
and peak memory (RSS of each Dask worker with its sandbox and check
processes, of the nbgrader process with its kernel, of the bare kernel).

    python benchmarks/batch_grading.py [--students 20] [--workdir DIR] [--json out.json]

Run it on a quiet machine; it takes a while (roughly N x 25 s).
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
MIX = ["reference"] * 14 + ["wrong-loss", "wrong-loss", "no-validation", "no-validation",
                            "fabricated-history", "broken"]
GROUPS = {  # cells of the notebook -> what they do
    "setup": "imports (TensorFlow, Keras) + seed",
    "load_data": "data prep", "tokenize": "data prep",
    "model": "model build",
    "compile": "compile",
    "fit": "training (1 epoch)",
    "plot_history": "plots",
}


def env(extra: dict | None = None) -> dict:
    out = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out.setdefault("SPAM_LAB_DATA_DIR", str(REPO.parent / "shared" / "data"))
    out.update(extra or {})
    return out


class PeakRSS:
    """Samples a process tree: peak of the whole tree and of each Dask worker's subtree."""

    def __init__(self, pid: int, every: float = 0.25):
        self.pid, self.every = pid, every
        self.tree_peak = 0.0
        self.worker_peak = 0.0
        self.main_peak = 0.0
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

    def _run(self):
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                children = root.children(recursive=True)
                self.tree_peak = max(self.tree_peak, self._rss([root, *children]))
                self.main_peak = max(self.main_peak, self._rss([root]))
                for child in root.children():
                    cmd = " ".join(child.cmdline())
                    if "spawn_main" in cmd and "resource_tracker" not in cmd:
                        self.worker_peak = max(self.worker_peak,
                                               self._rss([child, *child.children(recursive=True)]))
            except psutil.Error:
                pass
            time.sleep(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_timed(args: list[str], cwd: Path, extra_env: dict | None = None) -> tuple[float, PeakRSS, str]:
    print(f"  load average before: {os.getloadavg()[0]:.1f}", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(args, cwd=cwd, env=env(extra_env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    with PeakRSS(proc.pid) as peak:
        out, _ = proc.communicate()
    wall = time.monotonic() - start
    print(f"  load average after: {os.getloadavg()[0]:.1f} (1 min)", flush=True)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n{out[-3000:]}")
    return wall, peak, out


# --- the course and the submissions ---------------------------------------------

def make_course(root: Path, n: int) -> Path:
    from autograder import api

    api.release(api.open_course(root, create=True), force=True)
    release = root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    source = root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    released = nbformat.read(release, as_version=4)
    reference = examples.source_answers(source)
    for i in range(n):
        name = MIX[i % len(MIX)]
        answers = {**reference, **examples.VARIANTS[name]}
        answers["compile"] = f"# submission {i:02d} ({name})\n" + answers["compile"]  # every notebook unique
        folder = root / "submitted" / f"s{i:02d}-{name}" / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(examples.fill(released, answers), folder / f"{ASSIGNMENT}.ipynb")
    return root


def plain_nbgrader_course(kit_course: Path, root: Path) -> Path:
    shutil.copytree(kit_course, root)
    (root / "gradebook.db").unlink()
    config = (root / "nbgrader_config.py").read_text()
    config += ("\n# benchmark baseline: nbgrader's own pipeline (Execute; no sandbox, no hidden checks)\n"
               f"c.Autograde.autograde_preprocessors = {NBGRADER_PIPELINE!r}\n")
    (root / "nbgrader_config.py").write_text(config)
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force"], cwd=root,
                   env=env(), check=True, capture_output=True)
    return root


# --- bare nbclient -----------------------------------------------------------------

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


def bare_runs(course: Path, runs: int, threads: int) -> list[dict]:
    out = []
    student = sorted((course / "submitted").glob("*-reference"))[0]
    limits = {k: str(threads) for k in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
                                        "OPENBLAS_NUM_THREADS")}
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="bare-") as tmp:
            work = Path(tmp)
            shutil.copy(student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", work / "in.ipynb")
            shutil.copy(course / "source" / ASSIGNMENT / "spam_data.py", work / "spam_data.py")
            script = work / "bare.py"
            script.write_text(BARE)
            proc = subprocess.Popen([sys.executable, str(script), str(work / "in.ipynb"), str(work),
                                     str(work / "out.ipynb")], cwd=work, env=env({**limits, "MPLBACKEND": "agg"}),
                                    stdout=subprocess.PIPE, text=True)
            with PeakRSS(proc.pid) as peak:
                stdout, _ = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"bare nbclient run failed:\n{stdout}")
            executed = nbformat.read(work / "out.ipynb", as_version=4)
            out.append({"wall": json.loads(stdout.strip().splitlines()[-1])["wall"], "peak_mb": peak.tree_peak,
                        "cells": cell_seconds(executed)})
    return out


# --- where the time goes --------------------------------------------------------

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
        per.append({"seconds": r["seconds"], "execute": r["execute_seconds"], "checks": r["check_seconds"],
                    "sandbox_peak_mb": r["peak_rss_mb"], "groups": breakdown(cells, r["execute_seconds"])})
    return {"n": len(per), "per": per}


def mean(values) -> float:
    values = list(values)
    return statistics.fmean(values) if values else float("nan")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--bare-runs", type=int, default=3)
    parser.add_argument("--skip", action="append", default=[], choices=["nbgrader", "kit1", "kitN", "bare"])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spamkit-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"Working in {work}; {args.students} submissions; {os.cpu_count()} CPUs; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)

    base = make_course(work / "base", args.students)
    report: dict = {"students": args.students, "cpus": os.cpu_count(), "runs": {}}
    from autograder.course.batch import default_workers
    from autograder.settings import Sandbox, load_course_config

    cfg = load_course_config(base)
    threads = Sandbox(config=cfg).cpu_threads
    n_default = default_workers()

    if "bare" not in args.skip:
        bare = bare_runs(base, args.bare_runs, threads)
        report["bare"] = bare
        print(f"bare nbclient: {[round(b['wall'], 1) for b in bare]} s", flush=True)
    if "nbgrader" not in args.skip:
        course = plain_nbgrader_course(base, work / "nbgrader")
        wall, peak, _ = run_timed([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT], course)
        report["runs"]["nbgrader"] = {"wall": wall, "tree_peak_mb": peak.tree_peak}
        print(f"plain nbgrader autograde: {wall:.0f} s", flush=True)
    for tag, workers in (("kit1", 1), ("kitN", n_default)):
        if tag in args.skip:
            continue
        course = work / tag
        shutil.copytree(base, course)
        wall, peak, out = run_timed([sys.executable, "-m", "autograder", "grade", "--workers", str(workers),
                                     "--no-progress"], course)
        report["runs"][tag] = {"wall": wall, "workers": workers, "tree_peak_mb": peak.tree_peak,
                               "worker_peak_mb": peak.worker_peak, "client_peak_mb": peak.main_peak,
                               "timings": kit_timings(course)}
        print(f"kit, {workers} worker(s): {wall:.0f} s", flush=True)

    print_report(report, n_default)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def print_report(report: dict, n_default: int) -> None:
    from rich.console import Console
    from rich.table import Table

    n = report["students"]
    runs = report["runs"]
    base_wall = runs.get("nbgrader", {}).get("wall")
    table = Table(title=f"Grading {n} submissions ({report['cpus']} CPUs)")
    for col in ("run", "wall (s)", "per submission (s)", "vs plain nbgrader", "peak RSS (MB)"):
        table.add_column(col, justify="right" if col != "run" else "left")
    names = {"nbgrader": "plain nbgrader autograde (Execute, serial)", "kit1": "kit, 1 Dask worker",
             "kitN": f"kit, {n_default} Dask workers"}
    for tag, run in runs.items():
        ratio = f"{run['wall'] / base_wall:.2f}x" if base_wall else ""
        peak = (f"worker+children {run['worker_peak_mb']:.0f}, all {run['tree_peak_mb']:.0f}"
                if "worker_peak_mb" in run else f"process+kernel {run['tree_peak_mb']:.0f}")
        table.add_row(names[tag], f"{run['wall']:.0f}", f"{run['wall'] / n:.1f}", ratio, peak)
    if "kit1" in runs and "kitN" in runs:
        table.add_row(f"speed-up {n_default} workers vs 1", "", "", f"{runs['kit1']['wall'] / runs['kitN']['wall']:.2f}x",
                      "")
    Console().print(table)

    bare = report.get("bare")
    timing = runs.get("kit1", runs.get("kitN", {})).get("timings")
    if bare:
        bare_wall = statistics.median(b["wall"] for b in bare)
        print(f"\nbare nbclient execution of the reference notebook: median {bare_wall:.1f} s "
              f"(runs {', '.join(format(b['wall'], '.1f') for b in bare)}), kernel peak RSS {max(b['peak_mb'] for b in bare):.0f} MB")
        if base_wall:
            print(f"plain nbgrader per submission: {base_wall / n:.1f} s = bare + {base_wall / n - bare_wall:.1f} s")
    if timing and timing["per"]:
        per = timing["per"]
        t = Table(title="Where a kit submission's time goes (mean over the 1-worker run)")
        t.add_column("part")
        t.add_column("seconds", justify="right")
        groups: dict[str, list] = {}
        for p in per:
            for g, s in p["groups"].items():
                groups.setdefault(g, []).append(s)
        for g, values in sorted(groups.items(), key=lambda kv: -mean(kv[1])):
            t.add_row(f"notebook run: {g}", f"{sum(values) / len(per):.1f}")
        t.add_row("notebook run in the sandbox (total)", f"{mean(p['execute'] for p in per):.1f}")
        t.add_row("hidden checks (warm check process: re-evaluate, pytest)", f"{mean(p['checks'] for p in per):.1f}")
        t.add_row("submission total (kit timer)", f"{mean(p['seconds'] for p in per):.1f}")
        if bare:
            t.add_row("overhead over a bare nbclient run", f"{mean(p['seconds'] for p in per) - bare_wall:.1f}")
            middle = sorted(bare, key=lambda b: b["wall"])[len(bare) // 2]
            bare_groups = breakdown(middle["cells"], middle["wall"])
            t.add_row("bare run: " + ", ".join(f"{g} {s:.1f}" for g, s in bare_groups.items()), "")
        Console().print(t)
        print(f"sandbox peak RSS per submission (kit's watchdog): max {max(p['sandbox_peak_mb'] for p in per):.0f} MB, "
              f"mean {mean(p['sandbox_peak_mb'] for p in per):.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
