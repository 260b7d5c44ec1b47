"""One batch at a time per course and assignment in a shared gradebook database.

``Course.lock`` takes a file lock in the course folder. With SQLite that is
enough: the gradebook lies in the course. A PostgreSQL gradebook
(``KIT_DB_URL``) can be shared by several course folders, on several
machines (two TAs grading the same lab), where a file lock in one folder does
not see the other. So for a server database the batch also holds a
PostgreSQL session-level advisory lock, keyed by course id and assignment,
on a connection of its own for as long as it runs. The server drops the lock
when that connection closes, also when the batch is killed, so a killed
batch does not block the next one. The connection runs in autocommit: it
holds no transaction open while the batch grades.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

APPLICATION = "spamkit grade"


def lock_key(course_id: str, assignment: str) -> int:
    """The advisory lock's 64-bit key: the same for every grader of this course's assignment."""
    digest = hashlib.sha256(f"spamkit batch\0{course_id}\0{assignment}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def uses_server_lock(db_url: str) -> bool:
    return make_url(db_url).get_backend_name() == "postgresql"


def _holder(conn, key: int) -> str:
    """Who holds the lock, as far as the server tells this user ('' if it does not)."""
    row = conn.execute(
        text(
            "SELECT a.application_name, a.client_addr, a.client_hostname, a.backend_start "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
        ),
        {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
    ).first()
    if row is None or not row.application_name:
        return ""
    since = f" since {row.backend_start:%Y-%m-%d %H:%M:%S %Z}".rstrip() if row.backend_start else ""
    return f" (held by {row.application_name}{since})"


@contextlib.contextmanager
def batch_lock(db_url: str, course_id: str, assignment: str):
    """Hold the gradebook's lock for this course's assignment while the block runs.

    Yields "" when this process holds it (or the database needs none: SQLite),
    else a sentence saying that another batch holds it.
    """
    if not uses_server_lock(db_url):
        yield ""
        return
    key = lock_key(course_id, assignment)
    name = f"{APPLICATION} {socket.gethostname()}:{os.getpid()}"[:63]
    engine = create_engine(make_url(db_url), poolclass=NullPool, connect_args={"application_name": name})
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
                yield (
                    f"another batch is grading {course_id}/{assignment} in the gradebook database "
                    f"{make_url(db_url).render_as_string(hide_password=True)}{_holder(conn, key)}"
                )
                return
            try:
                yield ""
            finally:
                with contextlib.suppress(Exception):  # closing the connection releases it anyway
                    conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()
