"""The hub's settings, in course_config.py like every other setting of the course (``c.CourseHub.x = ...``)."""

from __future__ import annotations

from traitlets import Int, Unicode
from traitlets.config import Configurable


class CourseHub(Configurable):
    ip = Unicode("127.0.0.1", help="address the hub's proxy listens on; TLS goes in front (README)").tag(config=True)
    port = Int(8000, help="port of the hub's public proxy").tag(config=True)
    state_dir = Unicode(
        "/srv/spamkit-hub",
        help="the hub's own files (database, cookie secret, per-role Jupyter "
        "configuration); made by the hub command, root's",
    ).tag(config=True)
    exchange_root = Unicode(
        "/srv/nbgrader/exchange",
        help="nbgrader's exchange (c.Exchange.root): a local folder "
        "every account can reach; shared storage on several machines",
    ).tag(config=True)
    roster = Unicode(
        "hub_roster.csv",
        help="CSV user,role,password (role: instructor or student; an empty "
        "password is made up and printed once), relative to the course root",
    ).tag(config=True)
    cgroup_name = Unicode(
        "spamkit_hub",
        help="folder the delegated cgroup of the grading account is made in, "
        "under the hub's own cgroup in each hierarchy",
    ).tag(config=True)
