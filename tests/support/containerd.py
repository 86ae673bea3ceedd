"""A real containerd (Debian's `containerd`) with its own root, state and socket, for checking that the
bundle's image tarballs import with `ctr images import` as the nodes run it. Needs root; skips otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def containerd():
    binary, ctr = shutil.which("containerd"), shutil.which("ctr")
    if not binary or not ctr:
        pytest.skip("needs containerd and ctr: apt-get install containerd")
    if os.geteuid() != 0:
        pytest.skip("containerd needs root")
    base = Path(tempfile.mkdtemp(prefix="jhub-ctd-", dir="/tmp"))  # a socket path must stay short
    socket = base / "containerd.sock"
    (base / "config.toml").write_text(
        f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
        f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "{socket}"\n'
    )
    log = open(base / "containerd.log", "wb")
    process = subprocess.Popen([binary, "--config", str(base / "config.toml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        argv = [ctr, "--address", str(socket), "--namespace", "jhub-test"]
        while subprocess.run(argv + ["version"], capture_output=True).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("containerd did not start: " + (base / "containerd.log").read_text())
            time.sleep(0.2)
        yield argv
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
        shutil.rmtree(base, ignore_errors=True)
