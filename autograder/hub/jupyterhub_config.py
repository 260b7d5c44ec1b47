"""JupyterHub's configuration for the course, read by ``jupyterhub -f`` as the hub command starts it.

Everything course-specific comes from the plan the command wrote (``SPAMKIT_HUB_PLAN``, a JSON file in
the hub's state folder): the roster, the course id, the exchange, the ports, the instructor's cgroups.
"""

import json
import os

from jupyterhub.spawner import LocalProcessSpawner

from autograder.hub.cgroup_delegation import enter_then

c = get_config()  # noqa: F821 - provided by traitlets when JupyterHub loads this file
plan = json.loads(open(os.environ["SPAMKIT_HUB_PLAN"]).read())
course = plan["course_id"]
instructor, students = plan["instructor"], plan["students"]
state = plan["state_dir"]

# --- the hub and its proxy: local only; TLS goes in front (README) ------------------------------
c.JupyterHub.ip = plan["ip"]
c.JupyterHub.port = plan["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = plan["hub_port"]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{plan['proxy_api_port']}"
c.ConfigurableHTTPProxy.command = [plan["proxy"]]
c.ConfigurableHTTPProxy.pid_file = f"{state}/proxy.pid"
c.JupyterHub.db_url = f"sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{state}/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = True  # the users' servers stop with the hub

# --- who logs in: the roster's Unix accounts, by PAM (README: LTI 1.3 through jupyterhub-ltiauthenticator) ---
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set([instructor, *students])
c.PAMAuthenticator.open_sessions = False  # no login session (systemd-logind) for a server; PAM checks the password

# --- nbgrader's groups and what they may do on the hub -----------------------------------------
c.JupyterHub.load_groups = {
    f"nbgrader-{course}": {"users": students},
    f"formgrade-{course}": {"users": [instructor]},
}
c.JupyterHub.load_roles = [
    {
        # formgrader adds students to the course group (nbgrader's JupyterHubAuthPlugin), and asks which
        # course a submitter is in; nothing else about other users, and no access to their servers.
        "name": f"formgrade-{course}",
        "description": f"grader of {course}: manages the membership of nbgrader-{course}",
        "groups": [f"formgrade-{course}"],
        "scopes": [
            "list:groups",
            f"groups!group=nbgrader-{course}",
            f"read:users:groups!group=nbgrader-{course}",
            f"read:users:name!group=nbgrader-{course}",
        ],
    }
]
# A server's own API token: the hub's default (activity, access to itself), plus reading its user's groups
# (nbgrader's course list) and, for the grader, the group scopes above. A token gets only what its user holds.
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    "read:users:groups!user",
    "read:users:name!user",
    "list:groups",
    f"groups!group=nbgrader-{course}",
    f"read:users:groups!group=nbgrader-{course}",
    f"read:users:name!group=nbgrader-{course}",
]


# --- each user's server: a process of their own Unix account (LocalProcessSpawner) ---------------
class CourseSpawner(LocalProcessSpawner):
    """On a cgroup v2 host the instructor's server is moved into its delegated leaf by the forked child,
    still root, before it becomes the instructor (cgroup_delegation.py says why the server cannot)."""

    def make_preexec_fn(self, name):
        become_user = super().make_preexec_fn(name)
        if name == instructor and plan.get("cgroup_v2_procs"):
            return enter_then(plan["cgroup_v2_procs"], become_user)
        return become_user


c.JupyterHub.spawner_class = CourseSpawner
c.Spawner.cmd = [plan["singleuser"]]
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
c.Spawner.environment = {"SPAM_LAB_DATA_DIR": plan["data_dir"], "TF_CPP_MIN_LOG_LEVEL": "3"} if plan["data_dir"] else {}


def per_role(spawner):
    """The role's Jupyter configuration; the instructor's server starts in the delegated cgroups."""
    name = spawner.user.name
    role = "instructor" if name == instructor else "student"
    spawner.environment["JUPYTER_CONFIG_PATH"] = plan["config_dirs"][role]
    if role == "instructor":
        spawner.cmd = [plan["cgroup_wrapper"], plan["singleuser"]]
        spawner.environment["SPAMKIT_CGROUP_PROCS"] = ":".join(plan["cgroup_procs"])
        spawner.environment["SPAMKIT_CGROUP_V2_LEAF"] = plan.get("cgroup_v2_leaf", "")
        spawner.environment["TMPDIR"] = plan["instructor_tmp"]  # not the shared /tmp (README: who grades)


c.Spawner.pre_spawn_hook = per_role

# --- the grading service (graded on submit: autograder/hub/grading_service.py) --------------------
# Always started; it grades only while c.OnSubmit.enabled is True in the instructor's course_config.py,
# which it reads again on every pass. It runs as the instructor, inside the instructor's delegated
# cgroups (the same wrapper as the instructor's server) with the instructor's private TMPDIR: the sandbox
# it grades in is formgrader's, out of every student's reach. JupyterHub restarts it if it ends.
_grading = [
    plan["cgroup_wrapper"],
    f"{plan['users_bin']}/python",
    "-m",
    "autograder.hub.grading_service",
    "--course-dir",
    plan["course_root"],
    "--exchange-root",
    plan["exchange_root"],
]
_grading_env = {
    "SPAMKIT_CGROUP_PROCS": ":".join(plan["cgroup_procs"]),
    "SPAMKIT_CGROUP_V2_LEAF": plan.get("cgroup_v2_leaf", ""),
    "TMPDIR": plan["instructor_tmp"],
    "TF_CPP_MIN_LOG_LEVEL": "3",
    "SPAM_LAB_DATA_DIR": plan["data_dir"],
}
_service = {"name": "spamkit-grading", "command": _grading, "cwd": plan["course_root"], "environment": _grading_env}
if plan.get("cgroup_v2_procs"):
    # cgroup v2: only root may move a process into the leaf (cgroup_delegation.py), so the service starts as
    # root, moves itself in, and becomes the instructor before it runs anything else (not tested on a v2 host).
    import pwd as _pwd

    _home = _pwd.getpwnam(instructor).pw_dir
    _service["command"] = [
        "/bin/sh",
        "-c",
        'echo $$ > "$0" && u="$1" && shift && exec setpriv --reuid="$u" --regid="$u" --init-groups -- "$@"',
        plan["cgroup_v2_procs"],
        instructor,
        *_grading,
    ]
    _service["environment"] = {**_grading_env, "HOME": _home, "USER": instructor}
else:
    _service["user"] = instructor
c.JupyterHub.services = [_service]
