"""A throw-away PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temporary folder.

The server listens on a unix socket in its own folder only (no TCP port to
pick or to collide on), trusts local connections, and is stopped and
deleted at the end. PostgreSQL refuses to run as root, so under root (CI)
``initdb`` and ``pg_ctl`` run through ``setpriv`` as the ``postgres``
account of the Debian package (else ``nobody``).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from glob import glob
from pathlib import Path

SUPERUSER = "spamkit"


def find_bindir() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    versions = sorted(
        glob("/usr/lib/postgresql/*/bin"), key=lambda p: [int(x) for x in re.findall(r"\d+", p)], reverse=True
    )
    candidates += [Path(p) for p in versions]
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


class PostgresServer:
    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.dir: Path | None = None
        self._as: list[str] = []

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [*self._as, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            cwd=self.dir,
        )
        if proc.returncode != 0:
            log = (self.dir / "server.log").read_text(errors="replace")[-3000:] if self.dir else ""
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{log}")
        return proc

    def start(self) -> PostgresServer:
        # /tmp, not pytest's tmp_path: under root that lies in a 0700 folder the server's user cannot enter
        self.dir = Path(tempfile.mkdtemp(prefix="spamkit-pg-"))
        if os.geteuid() == 0:
            account = next(a for a in ("postgres", "nobody") if _exists(a))
            user = pwd.getpwnam(account)
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"]
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.dir / "data"),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            f"-k {self.dir} -c listen_addresses= -c fsync=off",
            "start",
        )
        return self

    def create_database(self, name: str) -> str:
        """A new database; returns its SQLAlchemy URL (psycopg 3 over the unix socket)."""
        self._run(str(self.bindir / "createdb"), "-h", str(self.dir), "-U", SUPERUSER, name)
        return f"postgresql+psycopg://{SUPERUSER}@/{name}?host={self.dir}"

    def stop(self) -> None:
        if self.dir is None:
            return
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _exists(account: str) -> bool:
    try:
        pwd.getpwnam(account)
    except KeyError:
        return False
    return True
