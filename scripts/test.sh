#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it. Arguments go to pytest.
#   ./scripts/test.sh                 # the whole suite
#   ./scripts/test.sh tests/program   # one folder
#   JHUB_TEST_WORKERS=0 ./scripts/test.sh -x   # in one process (pdb, -x), no parallel workers
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt_install() {  # packages the tests use for real; installed when we can (root), else those tests skip
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq "$@" >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; } ||
      echo "test.sh: could not install $*; the tests that need it will skip" >&2
  else
    echo "test.sh: cannot install $* (not root); the tests that need it will skip" >&2
  fi
}

# The hub and portal code (and their pinned packages) need Python 3.11 or newer: Ubuntu 24.04 has 3.12;
# on 22.04 this installs python3.11 from the distribution.
pick_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}
if [ ! -x .venv/bin/python ]; then
  python="$(pick_python)" || { apt_install python3.11 python3.11-venv; python="$(pick_python)"; } || {
    echo "test.sh: the tests need Python 3.11 or newer (apt-get install python3.11 python3.11-venv)" >&2; exit 1; }
  if ! "$python" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    apt_install "$(basename "$python")-venv" python3-venv
    "$python" -m venv .venv
  fi
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements-dev.txt
# A real helm v4 for rendering the upstream charts of ../shared/charts/ (tests/support/helm.py).
.venv/bin/python scripts/install_helm.py

# Real programs some tests drive: Chromium (pages), the OpenSSH server and client (admin-side SSH steps).
command -v chromium >/dev/null 2>&1 || apt_install chromium
{ [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null 2>&1; } ||
  apt_install openssh-server openssh-client
# A real OpenLDAP server for the hub's LDAP sign-in tests (tests/hub/test_hub_ldap.py).
[ -x /usr/sbin/slapd ] || apt_install slapd
# The bundle's image tests (tests/offline/): a real CNCF distribution registry, skopeo to push into it,
# containerd to import the tarballs the bundle writes.
{ command -v docker-registry && command -v skopeo && command -v containerd; } >/dev/null 2>&1 ||
  apt_install docker-registry skopeo containerd

# The notebook image's runtime (tests/images/test_runtime_*.py): its Desktop (TigerVNC + a minimal XFCE, the
# session bus through dbus-run-session), and what code-server's npm install builds its native modules with
# (node 20 with headers, g++, make, Kerberos headers) plus Debian's ripgrep in place of a GitHub download.
{ command -v Xtigervnc && command -v xfce4-session && command -v dbus-run-session; } >/dev/null 2>&1 ||
  apt_install tigervnc-standalone-server tigervnc-tools xfce4-session xfwm4 xfce4-panel xfdesktop4 \
    xfce4-terminal dbus-x11
{ command -v rg && command -v g++ && command -v make && [ -e /usr/include/krb5.h ]; } >/dev/null 2>&1 ||
  apt_install ripgrep g++ make libkrb5-dev

# Test files run in parallel, each whole on one pytest-xdist worker (--dist loadfile: a file's module
# fixtures are built once), one worker per core up to 4; JHUB_TEST_WORKERS=0 runs everything in this process.
workers="${JHUB_TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}"
[[ "$workers" =~ ^[0-9]+$ ]] || { echo "test.sh: JHUB_TEST_WORKERS must be a number, got '$workers'" >&2; exit 2; }
[ "$workers" -le 4 ] || workers=4
exec .venv/bin/python -m pytest -n "$workers" --dist loadfile "$@"
