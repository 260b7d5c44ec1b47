"""A JupyterLab server for a browser test: local, random port, token, own dirs."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kit_testing import REPO, course_env

SERVER_CONFIG = REPO / "jupyter_server_config.py"


@dataclass
class LabServer:
    url: str  # e.g. http://127.0.0.1:40123/ (ends with a slash)
    token: str
    root: Path
    log: Path
    process: subprocess.Popen

    def link(self, path: str = "lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.url}{path}{sep}token={self.token}"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextmanager
def lab_server(root: Path, state: Path, timeout: float = 90, env: dict | None = None):
    """Run `jupyter lab` in `root` (the server's root and working directory).

    `state` receives the server's config dir (JupyterLab keeps its settings
    and workspaces there; the user's ~/.jupyter is not read), its runtime dir
    and its log. The repo's jupyter_server_config.py is used, as an
    instructor would. `env` adds environment variables (e.g. JUPYTER_DATA_DIR).
    A failure inside the block gets the log's tail as a note.
    """
    state.mkdir(parents=True, exist_ok=True)
    runtime = state / "runtime"
    _answer_news_prompt(state / "config")
    token = secrets.token_hex(16)
    env = course_env(
        {
            "JUPYTER_CONFIG_DIR": str(state / "config"),
            "JUPYTER_RUNTIME_DIR": str(runtime),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
    )
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--config={SERVER_CONFIG}",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",  # the OS picks a free port; read back from the info file
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = state / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        server = _wait_ready(process, runtime, token, root, log, timeout)
        try:
            yield server
        except Exception as exc:
            exc.add_note(f"--- jupyter lab log ({log}), last lines ---\n{server.log_tail(3000)}")
            raise
    finally:
        _stop(process)


def _answer_news_prompt(config_dir: Path) -> None:
    """Say "no" to JupyterLab's first-run "get notified about Jupyter news?"
    toast (a user setting), which would otherwise cover part of the page."""
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def _wait_ready(process, runtime: Path, token: str, root: Path, log: Path, timeout: float) -> LabServer:
    info_file = runtime / f"jpserver-{process.pid}.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        if info_file.exists():
            try:
                info = json.loads(info_file.read_text())
                server = LabServer(info["url"], token, root, log, process)
                with urllib.request.urlopen(server.link("api/status"), timeout=5) as response:
                    if response.status == 200:
                        return server
            except (OSError, ValueError, KeyError):
                pass  # file half written or server not listening yet
        time.sleep(0.5)
    raise RuntimeError(f"jupyter lab did not start within {timeout} s:\n{log.read_text()[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()  # the server shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
