"""What the sandbox costs: seconds per submission with and without it.

Grades the reference notebook through the kit's grading path
(``engine.grade_notebook``: run in the sandbox, then the hidden checks) a few
times with ``Sandbox.mode = "bwrap"`` and with ``"none"``, alternating, and
prints the times and their difference. Also times an empty program started
through the sandbox against one started directly (the fixed start-up cost),
and through the sandbox without its seccomp filter (the filter's cost).

    python benchmarks/sandbox_cost.py [--repeat 3]

Needs SPAM_LAB_DATA_DIR (or the data cache). Builds a throw-away course in a
temp folder; the repo's own course is not touched.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from kit_testing import ASSIGNMENT, fill, make_course, release_notebook, source_answers  # noqa: E402

from autograder import sandbox  # noqa: E402
from autograder.grading.engine import grade_notebook  # noqa: E402
from autograder.grading.job import make_job  # noqa: E402
from autograder.sandbox import bwrap  # noqa: E402
from autograder.sandbox.limits import Slot  # noqa: E402
from autograder.sandbox.spec import RunSpec  # noqa: E402
from autograder.settings import Sandbox, load_course_config  # noqa: E402


def startup_seconds(settings: Sandbox, repeat: int) -> tuple[float, float, float]:
    """Median seconds to run `python -c pass` directly, through the sandbox, and through it without the seccomp
    filter (what the filter costs a start)."""
    strategy = sandbox.check_available(settings)
    direct, boxed, unfiltered = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.tsv"
        data.write_text("x\n")
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            direct.append(time.perf_counter() - start)
            for seccomp, times in ((True, boxed), (False, unfiltered)):
                with Slot() as slot:
                    start = time.perf_counter()
                    spec = replace(RunSpec.make(settings, strategy, slot, {}, data, {}), seccomp=seccomp)
                    launch = bwrap.command(spec)
                    subprocess.run([*launch.argv, sys.executable, "-c", "pass"], check=True, pass_fds=launch.fds)
                    launch.close()
                    times.append(time.perf_counter() - start)
    return statistics.median(direct), statistics.median(boxed), statistics.median(unfiltered)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="gradings per mode")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sandbox-cost-") as tmp:
        root = make_course(Path(tmp) / "course")
        nb_json = nbformat.writes(fill(release_notebook(root), source_answers(root)))
        config = load_course_config(root)
        job = make_job(config, root)
        settings = Sandbox(config=config)
        print(f"sandbox strategy here: {sandbox.check_available(settings)}; cpu_threads={settings.cpu_threads}")

        direct, boxed, unfiltered = startup_seconds(settings, 10)
        print(
            f"empty program: direct {direct:.3f} s, in the sandbox {boxed:.3f} s (+{boxed - direct:.3f} s), "
            f"in the sandbox without the seccomp filter {unfiltered:.3f} s"
        )

        times: dict[str, list[dict]] = {"bwrap": [], "none": []}
        for i in range(args.repeat):
            for mode in ("bwrap", "none"):
                mode_job = replace(job, sandbox={**job.sandbox, "mode": mode})
                result = grade_notebook(nb_json, {}, mode_job, ASSIGNMENT)
                times[mode].append(result)
                print(
                    f"run {i + 1} {mode:>5}: {result.seconds:6.2f} s total, execute {result.execute_seconds:6.2f} s,"
                    f" checks {result.check_seconds:5.2f} s, status {result.status}, score {result.score:g}"
                )

    print()
    print(f"{'':>14} {'total':>8} {'execute':>8} {'checks':>8}   (median of {args.repeat})")
    medians = {}
    for mode, results in times.items():
        medians[mode] = {
            k: statistics.median(getattr(r, k) for r in results)
            for k in ("seconds", "execute_seconds", "check_seconds")
        }
        m = medians[mode]
        print(
            f"{'sandbox' if mode == 'bwrap' else 'no sandbox':>14} {m['seconds']:8.2f} {m['execute_seconds']:8.2f} {m['check_seconds']:8.2f}"
        )
    d = {k: medians["bwrap"][k] - medians["none"][k] for k in medians["bwrap"]}
    print(
        f"{'difference':>14} {d['seconds']:+8.2f} {d['execute_seconds']:+8.2f} {d['check_seconds']:+8.2f}"
        f"   ({100 * d['seconds'] / medians['none']['seconds']:+.1f} % per submission)"
    )


if __name__ == "__main__":
    main()
