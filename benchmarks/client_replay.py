"""The batch client's own throughput: stored results replayed into the gradebook, no notebook trained.

A class of N students (default 500) hands in the reference solution, each
with a Markdown answer of their own, so every notebook is different while
the code is one group (README "Identical code is graded once"). One result
(the hidden checks' records, the sanitized notebook as its executed
notebook) is stored under the group's key before the batch, so ``spamkit
grade`` runs no sandbox and no check: what is left is the client's work per
student, preparing the notebook and writing its grade through nbgrader's
autograde. That is what bounds a batch on a large cluster, where the workers
hand in results faster than one client process can write them.

It reports students per second into the gradebook (wall time of the whole
``spamkit grade`` command, start-up included, and the steady rate between the
first and last ``autograded`` event of the batch log), with SQLite and with
PostgreSQL (a throw-away server, ``tests/pg_server.py``), and checks every
grade: one submission per student, every student's autograded score the
stored result's. ``--kill-at K`` kills the first batch after K grades and
runs it again, checking that the resumed batch loses and doubles nothing.

    python benchmarks/client_replay.py [--students 500] [--db sqlite --db postgres] [--kill-at 200]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
from autograder.course import examples  # noqa: E402

ASSIGNMENT = "spam_transformer"
CHECKS = [  # the stored result's checks: 5 + 0 + 3 of 20 points in the three test cells
    {"id": "replay_compile", "cell": "test_compile", "name": "replayed", "points": 5.0, "passed": True, "score": 5.0,
     "message": ""},
    {"id": "replay_fit", "cell": "test_fit", "name": "replayed", "points": 9.0, "passed": False, "score": 0.0,
     "message": "replayed, not run"},
    {"id": "replay_plot", "cell": "test_plot", "name": "replayed", "points": 6.0, "passed": False, "score": 3.0,
     "message": "replayed, not run"},
]
EXPECTED_SCORE = 8.0


def env(db_url: str) -> dict:
    out = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out.setdefault("SPAM_LAB_DATA_DIR", str(REPO.parent / "shared" / "data"))
    out.pop("KIT_DB_URL", None)
    if db_url:
        out["KIT_DB_URL"] = db_url
    return out


def make_class(root: Path, n: int, db_url: str) -> None:
    """A released course with n submissions of one code, and that code's result in the store."""
    from traitlets.config import Config

    from autograder import api
    from autograder.course.prepare import Sanitizer
    from autograder.model import GradingResult

    config = Config({"CourseDirectory": {"db_url": db_url or f"sqlite:///{root / 'gradebook.db'}"}})
    course = api.open_course(root, config, create=True)
    outcome = course.release(force=True)
    assert outcome["success"], outcome
    released = nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    reference = examples.source_answers(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    for i in range(n):
        folder = root / "submitted" / f"s{i:04d}" / ASSIGNMENT
        folder.mkdir(parents=True)
        answers = {**reference, "analysis": f"Student {i}: the validation curve follows the training curve."}
        nbformat.write(examples.fill(released, answers), folder / f"{ASSIGNMENT}.ipynb")
    course.grade_with(None)
    entry = course.entries(["s0000"])[0]
    prepared = Sanitizer(course).prepare(entry)
    result = GradingResult.from_dict({
        "version": 1, "status": "ok", "message": "", "sandboxed": True, "seconds": 20.0, "peak_rss_mb": 700.0,
        "capture_errors": [], "execute_seconds": 15.0, "check_seconds": 5.0, "executed": prepared.submission.nb_json,
        "checks": CHECKS})
    result.code, result.graded_for = prepared.submission.code, "s0000"
    course.store.put(course.store.place(prepared.submission), result)


def grade(root: Path, db_url: str, kill_at: int = 0) -> tuple[float, int]:
    """``spamkit grade`` on the class: wall seconds and exit code (killed after ``kill_at`` grades if set)."""
    log = root / ".kit" / "log" / f"{ASSIGNMENT}.jsonl"
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "--no-progress"], cwd=root,
                            env=env(db_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    while kill_at and proc.poll() is None:
        if log.is_file() and log.read_text().count('"autograded"') >= kill_at:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    _, err = proc.communicate()
    if proc.returncode not in (0, 1, -signal.SIGKILL):
        raise RuntimeError(f"spamkit grade exited {proc.returncode}:\n{err[-3000:]}")
    return time.monotonic() - start, proc.returncode


def steady_rate(root: Path) -> tuple[int, float]:
    """Grades written by the last batch and their rate between its first and last ``autograded`` event."""
    log = root / ".kit" / "log" / f"{ASSIGNMENT}.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    times = [datetime.fromisoformat(e["at"]).timestamp() for e in events if e["event"] == "autograded"]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return len(times), (len(times) - 1) / span if span else float("nan")


def verify(root: Path, db_url: str, n: int) -> None:
    """One submission per student, each with the stored result's score."""
    from nbgrader.api import Gradebook, SubmittedAssignment

    with Gradebook(db_url or f"sqlite:///{root / 'gradebook.db'}", "default_course") as gb:
        subs = gb.db.query(SubmittedAssignment).all()
        per_student: dict[str, int] = {}
        for sub in subs:
            per_student[sub.student.id] = per_student.get(sub.student.id, 0) + 1
        assert len(per_student) == n and set(per_student.values()) == {1}, f"submissions per student: {per_student}"
        wrong = {s.student.id: s.code_score for s in subs if abs(s.code_score - EXPECTED_SCORE) > 1e-9}
        assert not wrong, f"grades differ from the stored result's {EXPECTED_SCORE}: {dict(list(wrong.items())[:5])}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--db", action="append", choices=("sqlite", "postgres"), default=[])
    parser.add_argument("--kill-at", type=int, default=0, help="kill the first batch after this many grades")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spamkit-replay-"))
    report = {"students": args.students, "cpus": len(os.sched_getaffinity(0)), "runs": {}}
    for db in args.db or ["sqlite", "postgres"]:
        server = None
        db_url = ""
        if db == "postgres":
            from pg_server import PostgresServer, find_bindir

            server = PostgresServer(find_bindir()).start()
            db_url = server.create_database("replay")
        try:
            root = work / db
            make_class(root, args.students, db_url)
            run: dict = {}
            if args.kill_at:
                run["killed_after_s"], _ = grade(root, db_url, kill_at=args.kill_at)
                run["graded_before_kill"] = steady_rate(root)[0]
            wall, code = grade(root, db_url)
            written, rate = steady_rate(root)
            verify(root, db_url, args.students)
            run.update({"wall": wall, "written": written, "per_second_wall": written / wall,
                        "per_second_steady": rate, "exit": code})
            report["runs"][db] = run
            print(f"{db}: {written} grades written in {wall:.1f} s: {written / wall:.2f} students/s "
                  f"(steady {rate:.2f}/s){'; resumed after a kill at ' + str(run['graded_before_kill']) if args.kill_at else ''}; "
                  f"every grade {EXPECTED_SCORE}, one submission each", flush=True)
        finally:
            if server is not None:
                server.stop()
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
