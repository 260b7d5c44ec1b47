"""``./kit.sh hub`` (``python -m autograder.hub``): the course on JupyterHub, in one command run as root.

It makes, before the hub starts: the roster's Unix accounts, the instructor's course root (the kit's
course, in their home, theirs alone), nbgrader's exchange, the instructor's delegated cgroups and a
private temp folder, the Jupyter configuration of each role; then runs JupyterHub until stopped
(Ctrl-C or SIGTERM). On the way out it stops the hub and the users' servers and removes the cgroups;
with ``--throwaway`` (tests, demos) also the accounts it made, their homes and the exchange's course folder.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from traitlets.config import Config

from autograder.course.course import REPO_ROOT, make_course_root
from autograder.settings import load_course_config

from . import accounts, cgroup_delegation, exchange, user_config, user_python
from .roster import read_roster
from .settings import CourseHub

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PROXY = REPO_ROOT / ".venv" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"  # kit.sh installs it


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./kit.sh hub", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--course-dir",
        type=Path,
        default=Path.cwd(),
        help="the course root whose course_config.py is read (default: here)",
    )
    parser.add_argument("--roster", type=Path, help="CSV user,role,password (default: CourseHub.roster)")
    parser.add_argument(
        "--throwaway",
        action="store_true",
        help="on exit, also remove the accounts made, their homes, the exchange's course folder and the state folder",
    )
    parser.add_argument("settings", nargs="*", help="--CourseHub.port=8443 style overrides")
    args, extra = parser.parse_known_args(argv)
    args.settings += extra
    return args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def course_settings(course_dir: Path, overrides: list[str]) -> tuple[Config, CourseHub]:
    config = load_course_config(course_dir)
    from traitlets.config.loader import KVArgParseConfigLoader

    config.merge(KVArgParseConfigLoader(overrides).load_config())
    return config, CourseHub(config=config)


def prepare(args: argparse.Namespace) -> dict:
    """Everything the hub needs, made as root; the plan the hub's configuration reads."""
    config, hub = course_settings(args.course_dir.resolve(), args.settings)
    course_id = config.CourseDirectory.course_id
    roster_file = args.roster or args.course_dir / hub.roster
    roster = read_roster(roster_file)
    if roster_file.stat().st_mode & 0o077 and any(not m.password_made_up for m in roster):
        print(f"warning: {roster_file} holds passwords and other accounts may read it: chmod 600 it", flush=True)
    state = Path(hub.state_dir)
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)  # users' servers read their role's configuration in it; the secrets in it are 0600
    made_file = state / "accounts_made.json"
    made = set(json.loads(made_file.read_text())) if made_file.exists() else set()
    for member in roster:
        if accounts.create(member):
            made.add(member.name)
        made_file.write_text(json.dumps(sorted(made)))
        if member.password_made_up:
            print(f"password of {member.name}: {member.password}", flush=True)
    instructor = next(m.name for m in roster if m.role == "instructor")
    account = pwd.getpwnam(instructor)
    home = Path(account.pw_dir)
    course_root = home / course_id
    tmp = home / ".cache" / "spamkit-tmp"
    if not (course_root / "course_config.py").exists():
        make_course_root(course_root)
    for folder in (course_root, tmp):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    for path in [home / ".cache", course_root, tmp, *course_root.rglob("*")]:
        os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
    exchange.make(Path(hub.exchange_root), course_id, instructor)
    users_bin = user_python.users_bin(Path(sys.prefix))
    config_dirs = user_config.write(state / "jupyter", course_id, hub.exchange_root, course_root)
    v2_procs = cgroup_delegation.delegate_v2(hub.cgroup_name, instructor)  # None on a v1 or hybrid host
    proxy = PROXY if PROXY.exists() else shutil.which("configurable-http-proxy")
    plan = {
        "course_id": course_id,
        "instructor": instructor,
        "course_root": str(course_root),
        "students": [m.name for m in roster if m.role == "student"],
        "state_dir": str(state),
        "exchange_root": hub.exchange_root,
        "ip": hub.ip,
        "port": hub.port,
        "hub_port": free_port(),
        "proxy_api_port": free_port(),
        "proxy": str(proxy),
        "users_bin": str(users_bin),
        "singleuser": str(users_bin / "jupyterhub-singleuser"),
        "cgroup_wrapper": str(HERE / "singleuser_in_cgroup.sh"),
        "cgroup_name": hub.cgroup_name,
        "cgroup_procs": [str(p) for p in cgroup_delegation.delegate(hub.cgroup_name, instructor)],
        "cgroup_v2_procs": str(v2_procs) if v2_procs else "",
        "cgroup_v2_leaf": f"/{hub.cgroup_name}/{instructor}/{cgroup_delegation.LEAF}" if v2_procs else "",
        "instructor_tmp": str(tmp),
        "data_dir": os.environ.get("SPAM_LAB_DATA_DIR", ""),
        "config_dirs": {role: str(path) for role, path in config_dirs.items()},
        "throwaway": args.throwaway,
        "accounts_made": sorted(made),
    }
    plan_file = state / "plan.json"
    plan_file.write_text(json.dumps(plan, indent=1))
    plan_file.chmod(0o600)
    return plan


def run_hub(plan: dict) -> int:
    """JupyterHub in the foreground until it ends or this process is asked to stop."""
    env = {
        **os.environ,
        "SPAMKIT_HUB_PLAN": str(Path(plan["state_dir"]) / "plan.json"),
        "PATH": os.pathsep.join([plan["users_bin"], os.environ.get("PATH", "")]),
    }
    hub = subprocess.Popen(
        [str(BIN / "jupyterhub"), "-f", str(HERE / "jupyterhub_config.py")], cwd=plan["state_dir"], env=env
    )
    print(f"The course hub: http://{plan['ip']}:{plan['port']}/  (stop with Ctrl-C)", flush=True)

    def stop(signum, frame):
        hub.send_signal(signal.SIGTERM)  # JupyterHub stops the users' servers and its proxy

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return hub.wait()
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()


def clean_up(plan: dict) -> None:
    """The cgroups always (a server the hub lost is ended first); with --throwaway, what was made."""
    cgroup_delegation.undelegate(plan["cgroup_name"], plan["instructor"])
    for folder in cgroup_delegation.folders(plan["cgroup_name"], plan["instructor"]):
        if folder.exists():  # processes still inside: the instructor's, ended by uid
            accounts.stop_processes(plan["instructor"])
            cgroup_delegation.undelegate(plan["cgroup_name"], plan["instructor"])
            break
    if plan["throwaway"]:
        for name in plan["accounts_made"]:
            accounts.remove(name)
        shutil.rmtree(Path(plan["exchange_root"]) / plan["course_id"], ignore_errors=True)
        shutil.rmtree(plan["state_dir"], ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if os.geteuid() != 0:
        print("The hub command makes Unix accounts and cgroups: run it as root (sudo ./kit.sh hub).", file=sys.stderr)
        return 2
    try:
        plan = prepare(args)
    except BaseException:
        if args.throwaway:  # the accounts made before the failure
            config, hub = course_settings(args.course_dir.resolve(), args.settings)
            made = Path(hub.state_dir) / "accounts_made.json"
            for name in json.loads(made.read_text()) if made.exists() else []:
                accounts.remove(name)
        raise
    try:
        return run_hub(plan)
    finally:
        clean_up(plan)
