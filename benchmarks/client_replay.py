"""The batch client's own throughput: stored results replayed into the gradebook, no notebook trained.

A class of N students (default 500) hands in the reference solution in G
code groups (default 5: a line of the fit cell differs), each student with a
Markdown answer of their own, so every notebook is different while each
group's code is one (README "Identical code is graded once"). One result per
group (its own hidden-check scores, the group's sanitized notebook as its
executed notebook) is stored under the group's key before the batch, so
``spamkit grade`` runs no sandbox and no check: what is left is the client's
work per student, preparing the notebook and writing its grade through
nbgrader's autograde steps. That is what bounds a batch on a large cluster,
where the workers hand in results faster than one client process can write
them. The course has a due date; one student in ten handed in 1.5 days late
(nbgrader's late penalty, the course's per-day policy), one in ten on time
with a timestamp, the rest without one.

It reports students per second into the gradebook (wall time of the whole
``spamkit grade`` command, start-up included, and the steady rate between the
first and last ``autograded`` event of the batch log), with SQLite and with
PostgreSQL (a throw-away server, ``tests/pg_server.py``), and checks every
grade: one submission per student, every student's autograded score their
group's stored result, every late penalty the policy's. ``--kill-at K`` kills
the first batch after K grades and runs it again, checking that the resumed
batch loses and doubles nothing. ``--dump FILE`` writes every student's
gradebook rows (each cell's scores and comment, the timestamp, the penalty)
and the SHA-256 of their autograded notebook, to compare two kits' writes
(``--compare A B``).

    python benchmarks/client_replay.py [--students 500] [--groups 5] [--db sqlite --db postgres] [--kill-at 200]
    python benchmarks/client_replay.py --compare before.json after.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
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
DUE = "2026-11-20 17:00:00 UTC"
LATE = "2026-11-22 05:00:00 UTC"  # 1.5 days late: two started days of the per-day policy
ON_TIME = "2026-11-20 12:00:00 UTC"
PERCENT_PER_DAY = 10.0  # LatePenalty's default, which course_config.py keeps


def group_checks(g: int) -> list[dict]:
    """Group g's stored checks: the three test cells (5, 9 and 6 points) scored differently per group."""
    compile_score, fit_score, plot_score = float(5 - g % 6), 9.0 if g % 2 == 0 else 0.0, 1.5 * (g % 4)
    return [
        {
            "id": "replay_compile",
            "cell": "test_compile",
            "name": "replayed",
            "points": 5.0,
            "passed": compile_score == 5.0,
            "score": compile_score,
            "message": "",
        },
        {
            "id": "replay_fit",
            "cell": "test_fit",
            "name": "replayed",
            "points": 9.0,
            "passed": fit_score == 9.0,
            "score": fit_score,
            "message": "replayed, not run",
        },
        {
            "id": "replay_plot",
            "cell": "test_plot",
            "name": "replayed",
            "points": 6.0,
            "passed": plot_score == 6.0,
            "score": plot_score,
            "message": "replayed, not run",
        },
    ]


def group_of(i: int, groups: int) -> int:
    return i % groups


def timestamp_of(i: int) -> str | None:
    return LATE if i % 10 == 3 else ON_TIME if i % 10 == 5 else None


def expected(i: int, groups: int) -> tuple[float, float]:
    """(score, late penalty) of student i."""
    score = sum(c["score"] for c in group_checks(group_of(i, groups)))
    return score, round(score * PERCENT_PER_DAY / 100.0 * 2, 6) if timestamp_of(i) == LATE else 0.0


def env(db_url: str) -> dict:
    out = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out.setdefault("SPAM_LAB_DATA_DIR", str(REPO.parent / "shared" / "data"))
    out.pop("KIT_DB_URL", None)
    if db_url:
        out["KIT_DB_URL"] = db_url
    return out


def make_class(root: Path, n: int, db_url: str, groups: int = 5) -> None:
    """A released course with a due date, n submissions in ``groups`` codes, and each code's result in the store."""
    from traitlets.config import Config

    from autograder import api
    from autograder.course.prepare import Sanitizer
    from autograder.model import GradingResult

    config = Config({"CourseDirectory": {"db_url": db_url or f"sqlite:///{root / 'gradebook.db'}"}})
    course = api.open_course(root, config, create=True)
    with open(root / "course_config.py", "a") as fh:
        fh.write(f'\nc.LateWork.due_date = "{DUE}"\n')
    course = api.open_course(root, config)
    outcome = course.release(force=True)
    assert outcome["success"], outcome
    released = nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    reference = examples.source_answers(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    for i in range(n):
        folder = root / "submitted" / f"s{i:04d}" / ASSIGNMENT
        folder.mkdir(parents=True)
        answers = {
            **reference,
            "analysis": f"Student {i}: the validation curve follows the training curve.",
            "fit": reference["fit"] + f"\n_replay_group = {group_of(i, groups)}\n",
        }
        nbformat.write(examples.fill(released, answers), folder / f"{ASSIGNMENT}.ipynb")
        if timestamp_of(i):
            (folder / "timestamp.txt").write_text(timestamp_of(i) + "\n")
    course.grade_with(None)
    sanitizer = Sanitizer(course)
    for g in range(min(groups, n)):
        entry = course.entries([f"s{g:04d}"])[0]
        prepared = sanitizer.prepare(entry)
        result = GradingResult.from_dict(
            {
                "version": 1,
                "status": "ok",
                "message": "",
                "sandboxed": True,
                "seconds": 20.0,
                "peak_rss_mb": 700.0,
                "capture_errors": [],
                "execute_seconds": 15.0,
                "check_seconds": 5.0,
                "executed": prepared.submission.nb_json,
                "checks": group_checks(g),
            }
        )
        result.code, result.graded_for = prepared.submission.code, entry.student
        course.store.put(course.store.place(prepared.submission), result)


def grade(root: Path, db_url: str, kill_at: int = 0) -> tuple[float, int, float]:
    """``spamkit grade`` on the class: wall seconds, exit code (killed after ``kill_at`` grades if set) and the
    CPU seconds (user + system) of the command and its children: on a shared machine the wall time says how
    busy the machine was, the CPU time what the client needs."""
    log = root / ".kit" / "log" / f"{ASSIGNMENT}.jsonl"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autograder", "grade", "--no-progress"],
        cwd=root,
        env=env(db_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    while kill_at and proc.poll() is None:
        if log.is_file() and log.read_text().count('"autograded"') >= kill_at:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    _, err = proc.communicate()
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1, -signal.SIGKILL):
        raise RuntimeError(f"spamkit grade exited {proc.returncode}:\n{err[-3000:]}")
    return wall, proc.returncode, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def steady_rate(root: Path, skip: int = 0) -> tuple[int, float]:
    """Grades written by a batch (the log's events after the first ``skip``) and their rate between its first
    and last ``autograded`` event."""
    log = root / ".kit" / "log" / f"{ASSIGNMENT}.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()[skip:]]
    times = [datetime.fromisoformat(e["at"]).timestamp() for e in events if e["event"] == "autograded"]
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return len(times), (len(times) - 1) / span if span else float("nan")


def log_length(root: Path) -> int:
    log = root / ".kit" / "log" / f"{ASSIGNMENT}.jsonl"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def gradebook_rows(root: Path, db_url: str) -> dict:
    """Every student's gradebook rows (per cell: auto score, manual score, needs manual grade, auto comment),
    timestamp and late penalty, and the SHA-256 of their autograded notebook."""
    from nbgrader.api import Gradebook, SubmittedAssignment

    out: dict = {}
    with Gradebook(db_url or f"sqlite:///{root / 'gradebook.db'}", "default_course") as gb:
        for sub in gb.db.query(SubmittedAssignment).all():
            nb = sub.notebooks[0]
            path = root / "autograded" / sub.student.id / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
            out.setdefault(sub.student.id, []).append(
                {
                    "timestamp": str(sub.timestamp) if sub.timestamp else None,
                    "penalty": nb.late_submission_penalty,
                    "code_score": sub.code_score,
                    "grades": {g.name: [g.auto_score, g.manual_score, g.needs_manual_grade] for g in nb.grades},
                    "comments": {c.name: c.auto_comment for c in nb.comments},
                    "notebook": hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None,
                }
            )
    return out


def verify(root: Path, db_url: str, n: int, groups: int) -> dict:
    """One submission per student, each with its group's stored score and the policy's late penalty."""
    rows = gradebook_rows(root, db_url)
    counts = {student: len(subs) for student, subs in rows.items()}
    assert len(counts) == n and set(counts.values()) == {1}, f"submissions per student: {counts}"
    wrong = {}
    for student, (row,) in rows.items():
        score, penalty = expected(int(student[1:]), groups)
        if abs(row["code_score"] - score) > 1e-9 or abs((row["penalty"] or 0.0) - penalty) > 1e-9:
            wrong[student] = (row["code_score"], row["penalty"], score, penalty)
    assert not wrong, f"grades differ from the stored results': {dict(list(wrong.items())[:5])}"
    return rows


def compare(before: Path, after: Path) -> int:
    """Two dumps (``--dump``) of the same class: every row and notebook equal?"""
    a, b = json.loads(before.read_text()), json.loads(after.read_text())
    for db in sorted(set(a) | set(b)):
        x, y = a.get(db, {}), b.get(db, {})
        differ = sorted(s for s in set(x) | set(y) if x.get(s) != y.get(s))
        cells = sum(len(sub["grades"]) for subs in x.values() for sub in subs)
        print(
            f"{db}: {len(x)} vs {len(y)} students, {cells} grade rows compared: "
            + (
                "identical (every cell's scores and comments, timestamps, penalties, autograded notebooks)"
                if not differ
                else f"{len(differ)} differ, e.g. {differ[:5]}"
            )
        )
        for s in differ[:3]:
            print(f"  {s}:\n    before {x.get(s)}\n    after  {y.get(s)}")
        if differ:
            return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--groups", type=int, default=5, help="code groups, each with its own stored result")
    parser.add_argument("--db", action="append", choices=("sqlite", "postgres"), default=[])
    parser.add_argument("--repeat", type=int, default=1, help="classes graded per database (each a fresh one)")
    parser.add_argument("--kill-at", type=int, default=0, help="kill the first batch after this many grades")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--dump", type=Path, default=None, help="write every student's gradebook rows here")
    parser.add_argument("--compare", type=Path, nargs=2, default=None, metavar=("BEFORE", "AFTER"))
    args = parser.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="spamkit-replay-"))
    report = {"students": args.students, "groups": args.groups, "cpus": len(os.sched_getaffinity(0)), "runs": {}}
    dumps: dict = {}
    for db in args.db or ["sqlite", "postgres"]:
        server = None
        if db == "postgres":
            from pg_server import PostgresServer, find_bindir

            server = PostgresServer(find_bindir()).start()
        try:
            for k in range(args.repeat):
                db_url = server.create_database(f"replay{k}") if server else ""
                root = work / db / f"class{k}"
                make_class(root, args.students, db_url, args.groups)
                run: dict = {}
                if args.kill_at:
                    run["killed_after_s"], _, _ = grade(root, db_url, kill_at=args.kill_at)
                    run["graded_before_kill"] = steady_rate(root)[0]
                skip = log_length(root)
                wall, code, cpu = grade(root, db_url)
                written, rate = steady_rate(root, skip)
                rows = verify(root, db_url, args.students, args.groups)
                ran = [
                    e
                    for e in map(json.loads, (root / ".kit" / "log" / f"{ASSIGNMENT}.jsonl").read_text().splitlines())
                    if e["event"] == "executed"
                ]
                assert not ran, f"the replay ran notebooks: {ran[:3]}"
                dumps.setdefault(db, rows)
                run.update(
                    {
                        "wall": wall,
                        "cpu": cpu,
                        "written": written,
                        "per_second_wall": written / wall,
                        "per_second_steady": rate,
                        "cpu_per_student": cpu / max(1, written),
                        "load_average": os.getloadavg()[0],
                        "exit": code,
                    }
                )
                report["runs"].setdefault(db, []).append(run)
                resumed = f"; resumed after a kill at {run['graded_before_kill']}" if args.kill_at else ""
                print(
                    f"{db} #{k + 1}: {written} grades written in {wall:.1f} s: {written / wall:.2f} students/s "
                    f"(steady {rate:.2f}/s); client CPU {cpu:.1f} s = {cpu / max(1, written) * 1000:.0f} ms per "
                    f"student (start-up included); load average {os.getloadavg()[0]:.1f}{resumed}; every grade "
                    "and late penalty as stored, one submission each",
                    flush=True,
                )
        finally:
            if server is not None:
                server.stop()
        runs = report["runs"][db]
        if len(runs) > 1:
            rates, cpus = sorted(r["per_second_wall"] for r in runs), sorted(r["cpu_per_student"] for r in runs)
            print(
                f"{db}: {rates[0]:.2f} to {rates[-1]:.2f} students/s (median {rates[len(rates) // 2]:.2f}), "
                f"client CPU {cpus[0] * 1000:.0f} to {cpus[-1] * 1000:.0f} ms per student, over {len(runs)} "
                "classes",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.dump:
        args.dump.write_text(json.dumps(dumps, indent=0, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
