#!/usr/bin/env bash
# One entry point for a fresh Linux machine with Python 3.11:
#   ./kit.sh demo   install, then release the lab, grade example submissions, print grades, write the report
#   ./kit.sh test   install, then run the kit's whole test suite
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
    # two pytest-xdist workers (tests/conftest.py says what runs together); one on a one-core machine
    workers=$(nproc 2>/dev/null || echo 2); [ "$workers" -gt 2 ] && workers=2
    # the whole suite (tests), unless the pytest args name test paths: ./kit.sh test tests/unit
    paths=(tests); for arg in "$@"; do if [[ $arg != -* && -e ${arg%%::*} ]]; then paths=(); fi; done
    exec .venv/bin/python -m pytest -n "$workers" "${paths[@]}" "$@"
    ;;
  *)
    echo "usage: ./kit.sh demo | ./kit.sh test [pytest args]" >&2
    exit 2
    ;;
esac
