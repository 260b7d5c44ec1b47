"""Submit → feedback visible, on a running course hub with graded on submit (``OnSubmit.enabled``, feedback ``now``).

Run as root on the hub's machine, while ``./kit.sh hub`` runs:

    sudo .venv/bin/python benchmarks/submit_to_feedback.py --state-dir /srv/spamkit-hub --student ann [--runs 3] [--fresh-code]

For each run, as the student's own Unix account (``setpriv``), it writes the reference answers into their fetched
notebook, runs ``nbgrader submit`` (the students' configuration of the hub: the capped submit), then waits
until the submission's feedback is in the exchange (nbgrader's file name for it, from the submission's secret)
and until the student's ``nbgrader fetch_feedback`` has brought it home. It prints both times per run, and
their median.

Without ``--fresh-code`` every run submits the reference answers: the first run trains them unless the
course graded that code before, later runs take the identical-code path (the stored result, nbgrader's
autograde, feedback: no training). With ``--fresh-code`` each run's code is new (a variable with a random
value in the compile cell), so the sandbox trains the notebook: the time of a first submission. The
"fetched" time includes starting ``nbgrader fetch_feedback`` (a Python process) after the feedback is there;
in the Assignments tab that is one click on a server already running. Set ``c.OnSubmit.daily_cap = 0`` in the instructor's course_config.py first, or the cap refuses
later runs. ``--prepare`` releases the assignment (as the instructor) and fetches it (as the student) if
that has not been done. Prints figures; asserts nothing about them.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder.course.examples import fill, source_answers  # noqa: E402
from autograder.hub.on_submit import PUBLIC_FILE  # noqa: E402
from autograder.settings import Lab, load_course_config  # noqa: E402


def as_user(plan: dict, user: str, role: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    home = pwd.getpwnam(user).pw_dir
    env = {
        "HOME": home,
        "USER": user,
        "PATH": f"{plan['users_bin']}:/usr/bin:/bin",
        "JUPYTER_CONFIG_PATH": plan["config_dirs"][role],
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    return subprocess.run(
        ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def nbgrader(plan: dict, user: str, role: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # the students' nbgrader asks the hub which courses they are in; from here there is no hub token
    return as_user(
        plan,
        user,
        role,
        [
            f"{plan['users_bin']}/nbgrader",
            *args,
            f"--course={plan['course_id']}",
            "--Authenticator.plugin_class=nbgrader.auth.NoAuthPlugin",
        ],
        cwd,
    )


def prepare(plan: dict, student: str, assignment: str) -> None:
    course_root = Path(plan["course_root"])
    outbound = Path(plan["exchange_root"]) / plan["course_id"] / "outbound" / assignment
    if not outbound.exists():
        for step in (["generate_assignment", assignment, "--force"], ["release_assignment", assignment]):
            done = as_user(
                plan, plan["instructor"], "instructor", [f"{plan['users_bin']}/nbgrader", *step], course_root
            )
            if done.returncode:
                sys.exit(f"nbgrader {step[0]} as {plan['instructor']} failed:\n{done.stderr[-3000:]}")
    home = Path(pwd.getpwnam(student).pw_dir)
    if not (home / plan["course_id"] / assignment).exists():
        done = nbgrader(plan, student, "student", "fetch_assignment", assignment, cwd=home)
        if done.returncode:
            sys.exit(f"nbgrader fetch_assignment as {student} failed:\n{done.stderr[-3000:]}")


def write_answers(plan: dict, student: str, assignment: str, fresh: bool) -> None:
    account = pwd.getpwnam(student)
    path = Path(account.pw_dir) / plan["course_id"] / assignment / f"{assignment}.ipynb"
    answers = source_answers(REPO / "source" / assignment / f"{assignment}.ipynb")
    if fresh:  # new code: no stored result stands for it
        answers["compile"] = f"benchmark_nonce = {secrets.token_hex(8)!r}\n" + answers["compile"]
    nbformat.write(fill(nbformat.read(path, as_version=4), answers), path)
    os.chown(path, account.pw_uid, account.pw_gid)


def cache_entries(plan: dict, student: str, assignment: str) -> set[Path]:
    cache = Path(pwd.getpwnam(student).pw_dir) / ".local/share/jupyter/nbgrader_cache" / plan["course_id"]
    return set(cache.glob(f"{student}+{assignment}+*"))


def one_run(plan: dict, student: str, assignment: str, timeout: float) -> tuple[float, float]:
    from nbgrader.utils import notebook_hash

    home = Path(pwd.getpwnam(student).pw_dir)
    before = cache_entries(plan, student, assignment)
    started = time.monotonic()
    done = nbgrader(plan, student, "student", "submit", assignment, cwd=home)
    if done.returncode:
        sys.exit(f"nbgrader submit as {student} was refused or failed:\n{done.stderr[-3000:]}")
    (entry,) = cache_entries(plan, student, assignment) - before
    secret = (entry / "submission_secret.txt").read_text()
    feedback = (
        Path(plan["exchange_root"])
        / plan["course_id"]
        / "feedback"
        / f"{notebook_hash(secret=secret, notebook_id=assignment)}.html"
    )
    while not feedback.exists():
        if time.monotonic() - started > timeout:
            sys.exit(f"no feedback for {entry.name} within {timeout} s (is OnSubmit.enabled, feedback 'now'?)")
        time.sleep(0.2)
    in_exchange = time.monotonic() - started
    timestamp = entry.name.split("+", 2)[2]
    fetched = home / plan["course_id"] / assignment / "feedback" / timestamp / f"{assignment}.html"
    done = nbgrader(plan, student, "student", "fetch_feedback", assignment, cwd=home)
    if done.returncode or not fetched.exists():
        sys.exit(f"nbgrader fetch_feedback as {student} did not bring {fetched}:\n{done.stderr[-3000:]}")
    return in_exchange, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, default=Path("/srv/spamkit-hub"), help="CourseHub.state_dir")
    parser.add_argument("--student", default="", help="a student of the roster (default: the first)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fresh-code", action="store_true", help="new code each run: the sandbox trains it")
    parser.add_argument("--prepare", action="store_true", help="release and fetch the assignment if needed")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for one run's feedback")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (it reads the hub's plan and acts as the student's account)")
    plan = json.loads((args.state_dir / "plan.json").read_text())
    student = args.student or plan["students"][0]
    assignment = Lab(config=load_course_config(plan["course_root"])).assignment
    public = json.loads((Path(plan["exchange_root"]) / plan["course_id"] / PUBLIC_FILE).read_text())
    if not public.get("enabled") or public.get("feedback") != "now":
        sys.exit(
            f"the grading service says {public}: set c.OnSubmit.enabled = True and c.OnSubmit.feedback = "
            f"'now' in {plan['course_root']}/course_config.py (read on its next pass)"
        )
    if public.get("daily_cap") and args.runs > 1:
        print(f"note: OnSubmit.daily_cap is {public['daily_cap']}: later runs may be refused", flush=True)
    if args.prepare:
        prepare(plan, student, assignment)
    kind = (
        "fresh code (trained in the sandbox)"
        if args.fresh_code
        else "the reference answers each run (stored result once that code was graded)"
    )
    print(f"submit -> feedback for {student} on {assignment}, {args.runs} run(s), {kind}", flush=True)
    figures = []
    for run in range(1, args.runs + 1):
        write_answers(plan, student, assignment, args.fresh_code)
        in_exchange, fetched = one_run(plan, student, assignment, args.timeout)
        figures.append((in_exchange, fetched))
        print(
            f"  run {run}: feedback in the exchange after {in_exchange:6.1f} s, fetched by the student "
            f"after {fetched:6.1f} s",
            flush=True,
        )
    print(
        f"median: {statistics.median(f[0] for f in figures):.1f} s to the exchange, "
        f"{statistics.median(f[1] for f in figures):.1f} s fetched"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
