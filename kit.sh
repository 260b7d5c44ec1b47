#!/usr/bin/env bash
# One entry point for a fresh Linux machine with Python 3.11:
#   ./kit.sh demo   install, then release the lab, grade example submissions, print grades, write the report
#   ./kit.sh test   install, then run the kit's whole test suite
#   ./kit.sh lint   install, then ruff's lint and format check (settings in pyproject.toml)
#   ./kit.sh hub    install, then run the course on JupyterHub (root; see README "Run the course on JupyterHub")
# Set SPAM_LAB_DATA_DIR to a folder with the data to work offline (see README).
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_system() {
  # bubblewrap isolates student code; chromium drives the browser tests; the tests start
  # a throw-away PostgreSQL server (initdb + pg_ctl) to grade into a real server gradebook.
  local missing=()
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  # libseccomp builds the sandbox's system-call filter (through the pyseccomp package)
  ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2' || missing+=(libseccomp2)
  if [ "${1:-}" = test ] && ! command -v chromium >/dev/null; then missing+=(chromium); fi
  if [ "${1:-}" = test ] && ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    missing+=(postgresql)
  fi
  # the hub: npm for its proxy, patchelf to copy a closed interpreter for the users (autograder/hub/user_python.py)
  if [ "${1:-}" = test ] || [ "${1:-}" = hub ]; then
    command -v npm >/dev/null || missing+=(npm)
    command -v patchelf >/dev/null || missing+=(patchelf)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if command -v apt-get >/dev/null; then
      as_root apt-get update -qq
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
      echo "Please install: ${missing[*]} (no apt-get here)" >&2
    fi
  fi
}

install_python() {
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
}

# JupyterHub's proxy: the npm package, pinned, into the venv (the hub runs it from there).
CHP_VERSION=5.3.0
install_proxy() {
  local bin=.venv/hub-proxy/node_modules/.bin/configurable-http-proxy
  if [ ! -x "$bin" ] || [ "$(cat .venv/hub-proxy/version 2>/dev/null)" != "$CHP_VERSION" ]; then
    npm install --prefix .venv/hub-proxy --no-audit --no-fund --loglevel=error "configurable-http-proxy@$CHP_VERSION"
    echo "$CHP_VERSION" > .venv/hub-proxy/version
  fi
}

cmd=${1:-}
shift || true
# nbgrader shells out to `alembic` and `jupyter`: the venv's bin must be on PATH
export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
case "$cmd" in
  demo)
    install_system demo
    install_python
    exec .venv/bin/spamkit demo "$@"
    ;;
  test)
    install_system test
    install_python
    install_proxy
    # two pytest-xdist workers (tests/conftest.py says what runs together); one on a one-core machine
    workers=$(nproc 2>/dev/null || echo 2); [ "$workers" -gt 2 ] && workers=2
    # the whole suite (tests), unless the pytest args name test paths: ./kit.sh test tests/unit
    paths=(tests); for arg in "$@"; do if [[ $arg != -* && -e ${arg%%::*} ]]; then paths=(); fi; done
    exec .venv/bin/python -m pytest -n "$workers" "${paths[@]}" "$@"
    ;;
  lint)
    install_python
    .venv/bin/ruff check .
    exec .venv/bin/ruff format --check .
    ;;
  hub)
    install_system hub
    install_python
    install_proxy
    exec .venv/bin/python -m autograder.hub "$@"
    ;;
  *)
    echo "usage: ./kit.sh demo | ./kit.sh test [pytest args] | ./kit.sh lint | ./kit.sh hub [--roster F] [--CourseHub.x=...]" >&2
    exit 2
    ;;
esac
