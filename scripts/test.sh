#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it. Arguments go to pytest.
#   ./scripts/test.sh                 # the whole suite
#   ./scripts/test.sh tests/program   # one folder
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements-dev.txt

# Browser tests use Debian's Chromium; install it when we can (root), else those tests skip and say why.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "test.sh: chromium is not installed and this user cannot install it; browser tests will skip" >&2
  fi
fi

exec .venv/bin/python -m pytest "$@"
