"""Predict a batch's wall time on a cluster from measured per-notebook costs, and check it on batches run here.

A batch is a pipeline with two stages that overlap:

- the workers: each distinct notebook costs ``run`` seconds of one worker
  (sandbox + hidden checks, the kit's timer in the result store); W workers
  finish ``runs`` notebooks in ``ceil(runs / W) * run`` seconds;
- the client: each student costs ``client`` seconds of the client process
  (the batch log's ``prepared`` and ``autograded`` events: preparing the
  notebook, and nbgrader's autograde steps into the gradebook). When the
  batch prepares in processes of its own (its ``batch`` event's
  ``preparers``), the two overlap, and ``client`` is the larger of the
  write and the preparation shared among the preparers.

So wall ~ start + max(workers + client, run + class x client): the last
grade is written ``client`` after the last notebook lands, and the client
cannot write the first grade before one ``run`` has landed. ``start`` is the client's start-up
and the cluster's (measured: the time to the first ``submitted`` event).

    python benchmarks/scaling.py [--run 20] [--client 0.1] [--start 10] [--identical 0.25]
    python benchmarks/scaling.py --check COURSE_ROOT [COURSE_ROOT ...]   # a graded course: predicted vs real

``--check`` takes each course's own measured costs and worker count from its
batch log and compares the prediction with that batch's real wall time
(first event to last ``autograded``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from datetime import datetime
from pathlib import Path

STUDENTS = (200, 1000, 5000)
WORKERS = (8, 32, 128)


def predict(students: int, workers: int, run: float, client: float, start: float, identical: float = 0.0) -> float:
    """Seconds to grade ``students`` on ``workers``; a share ``identical`` of them is graded from a classmate's run."""
    runs = math.ceil(students * (1 - identical))
    on_workers = math.ceil(runs / workers) * run
    return start + max(on_workers + client, run + students * client)


def _ts(event: dict) -> float:
    return datetime.fromisoformat(event["at"]).timestamp()


def measured(course: Path) -> dict:
    """A graded course's costs from its batch log and result store, and the batch's real wall time."""
    log = sorted(course.glob(".kit/log/*.jsonl"))[0]
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    executed = [e for e in events if e["event"] == "executed"]
    workers = len({e.get("worker") for e in executed}) or 1
    students = len({e["student"] for e in events if e["event"] == "autograded"})
    prepare = sum(e.get("seconds", 0.0) for e in events if e["event"] == "prepared")
    write = sum(e.get("seconds", 0.0) for e in events if e["event"] == "autograded")
    preparers = max([e.get("preparers", 0) for e in events if e["event"] == "batch"] or [0])
    client = max(write, prepare / preparers) if preparers else prepare + write
    written = [_ts(e) for e in events if e["event"] == "autograded"]
    submitted = [_ts(e) for e in events if e["event"] in ("submitted", "autograded")]
    return {
        "students": students,
        "runs": len(executed),
        "workers": workers,
        "run": statistics.fmean(e["seconds"] for e in executed) if executed else 0.0,
        "client": client / max(1, students),
        "start": min(submitted) - _ts(events[0]) if submitted else 0.0,
        "wall": max(written) - _ts(events[0]) if written else 0.0,
    }


def check(courses: list[Path]) -> None:
    print("| course | students | runs | workers | run s | client s/student | predicted s | real s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for course in courses:
        m = measured(course)
        identical = 1 - m["runs"] / m["students"] if m["students"] else 0.0
        guess = predict(m["students"], m["workers"], m["run"], m["client"], m["start"], identical)
        print(
            f"| {course.name} | {m['students']} | {m['runs']} | {m['workers']} | {m['run']:.1f} | "
            f"{m['client']:.3f} | {guess:.0f} | {m['wall']:.0f} |"
        )


def table(run: float, client: float, start: float, identical: float) -> None:
    print(
        f"Predicted wall time (run {run:g} s per notebook, client {client:g} s per student, start {start:g} s, "
        f"{identical:.0%} identical code)\n"
    )
    print("| students | " + " | ".join(f"{w} workers" for w in WORKERS) + " | client-bound floor |")
    print("|---:|" + "---:|" * (len(WORKERS) + 1))
    for n in STUDENTS:
        cells = [_human(predict(n, w, run, client, start, identical)) for w in WORKERS]
        print(f"| {n:,} | " + " | ".join(cells) + f" | {_human(n * client)} |")
    print(f"\nThe client keeps {run / client:.0f} workers busy (run / client); past that, more workers do not help.")


def _human(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 600 else f"{seconds / 60:.1f} min"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=float, default=20.0, help="seconds of one worker per notebook")
    parser.add_argument("--client", type=float, default=0.1, help="client seconds per student")
    parser.add_argument("--start", type=float, default=10.0, help="seconds before the first notebook is sent")
    parser.add_argument("--identical", type=float, default=0.0, help="share of students graded from another's run")
    parser.add_argument("--check", type=Path, nargs="+", default=[], metavar="COURSE_ROOT")
    args = parser.parse_args(argv)
    if args.check:
        check(args.check)
    else:
        table(args.run, args.client, args.start, args.identical)
    return 0


if __name__ == "__main__":
    sys.exit(main())
