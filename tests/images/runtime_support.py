"""What the runtime tests of the notebook image share: the image's Python packages in a cached venv, the
image's environment, code-server from the npm registry, and a JupyterLab started with the image's own
configuration (images/notebook/etc/jupyter) whose whole process tree is ended on teardown."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "images" / "notebook"
REQUIREMENTS = IMAGE / "requirements.txt"
ETC_JUPYTER = IMAGE / "etc" / "jupyter"
# git-ignored, keyed by the requirements hash; JHUB_TEST_IMAGES_CACHE puts it outside the checkout, so that
# fresh clones (CI) reuse one install
CACHE = Path(os.environ.get("JHUB_TEST_IMAGES_CACHE") or ROOT / ".venv-images")
CODE_SERVER_VERSION = "4.100.3"  # the newest on npm whose install asks for node 20, the node CI has
HOME_IN_IMAGE = "/home/jovyan"

# The user's environment as the Dockerfile sets it (its last ENV block); used when the Dockerfile is not in
# this checkout. image_env() prefers the Dockerfile's own lines.
IMAGE_ENV_FALLBACK = {
    "PYTHONUSERBASE": "/home/jovyan/storage/.local",
    "PIP_USER": "1",
    "PATH": "/home/jovyan/storage/.local/bin:/opt/notebook/bin:/usr/local/bin:/usr/bin:/bin",
}


@contextlib.contextmanager
def _cache_lock(name: str):
    """One builder of a cache entry at a time: pytest-xdist workers may ask for it at once."""
    CACHE.mkdir(exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def image_venv() -> Path:
    """A venv holding exactly requirements.txt, installed as the image does (--no-deps), cached by hash.

    Made with --system-site-packages so that the user site is on (the image's Python is a conda prefix,
    not a venv, so `pip install --user` works there); completeness is checked against the venv's own
    site-packages only (unmet_requirements)."""
    key = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:16]
    venv = CACHE / f"notebook-py{sys.version_info.major}{sys.version_info.minor}-{key}"
    if (venv / ".complete").exists():
        return venv
    with _cache_lock(venv.name):
        if (venv / ".complete").exists():  # another worker made it while this one waited
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)])
        _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "--ignore-installed",
              "-r", str(REQUIREMENTS)], env={**os.environ, "PIP_USER": "0"}, timeout=1800)
        (venv / ".complete").write_text(key + "\n")
    return venv


def own_site_packages(venv: Path) -> Path:
    return next((venv / "lib").glob("python3*/site-packages"))


def code_server() -> Path:
    """code-server from the npm registry (tests/images/install-code-server), cached; skips saying why."""
    prefix = CACHE / f"code-server-{CODE_SERVER_VERSION}"
    binary = prefix / "node_modules" / ".bin" / "code-server"
    if (prefix / ".complete").exists():
        return binary.parent
    for tool in ("node", "npm", "g++", "make", "rg"):
        if not shutil.which(tool):
            pytest.skip(f"code-server's npm install needs {tool} (scripts/test.sh installs it)")
    node = subprocess.run(["node", "-p", "process.versions.node"], capture_output=True, text=True).stdout
    if not node.startswith("20."):
        pytest.skip(f"code-server {CODE_SERVER_VERSION} from npm needs node 20, this machine has {node.strip()}")
    with _cache_lock(prefix.name):
        if not (prefix / ".complete").exists():  # else another worker made it while this one waited
            shutil.rmtree(prefix, ignore_errors=True)
            _run([str(Path(__file__).with_name("install-code-server")), str(prefix), CODE_SERVER_VERSION],
                 timeout=1800)
            (prefix / ".complete").write_text(CODE_SERVER_VERSION + "\n")
    return binary.parent


def dockerfile_env() -> dict[str, str]:
    """The ENV values the Dockerfile's common stage ends with (the last value of each name wins)."""
    dockerfile = IMAGE / "Dockerfile"
    if not dockerfile.exists():
        return dict(IMAGE_ENV_FALLBACK)
    text = dockerfile.read_text().split("\nFROM common AS")[0].replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for name, value in re.findall(r"(\w+)=(\S+)", line[4:]):
                env[name] = value
    return env


def image_env(home: Path, venv: Path, *extra_path: Path) -> dict[str, str]:
    """The user's environment of the image, with its home directory mapped onto ``home`` and the image's
    Python (/opt/notebook/bin) onto ``venv``."""
    image = dockerfile_env()
    env = {name: value for name, value in os.environ.items() if not name.startswith(("PIP_", "PYTHON", "JUPYTER"))}
    for name in ("PYTHONUSERBASE", "PIP_USER", "CONDA_ENVS_DIRS", "CONDA_PKGS_DIRS", "JUPYTER_DATA_DIR"):
        if name in image:
            env[name] = image[name].replace(HOME_IN_IMAGE, str(home))
    image_path = image.get("PATH", IMAGE_ENV_FALLBACK["PATH"]).replace(HOME_IN_IMAGE, str(home))
    image_path = image_path.replace("/opt/notebook/bin", str(venv / "bin"))
    env["PATH"] = os.pathsep.join([*map(str, extra_path), image_path, os.environ.get("PATH", "")])
    env["HOME"] = str(home)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_with(marker: str) -> list[int]:
    """Every process whose environment carries ``marker`` (children that left the process group too)."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@dataclass
class Lab:
    url: str
    token: str
    home: Path
    process: subprocess.Popen
    marker: str
    log: Path

    def get(self, path: str, timeout: float = 60) -> tuple[int, bytes, dict]:
        request = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            return error.code, error.read(), dict(error.headers)

    def children(self, needle: str) -> list[int]:
        """Live processes of this run whose command line holds ``needle``."""
        pids = []
        for pid in processes_with(self.marker):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                state = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                             if line.startswith("State:"))
            except (OSError, StopIteration):
                continue
            if needle in cmdline and "zombie" not in state and pid != self.process.pid:
                pids.append(pid)
        return pids

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def start_lab(tmp: Path, venv: Path, *, idle_timeout: float, extra_path: tuple[Path, ...] = ()) -> Lab:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    marker = f"JHUB_TEST_RUN={uuid.uuid4().hex}"
    env = image_env(home, venv, *extra_path)
    env.update({"JUPYTER_CONFIG_PATH": str(ETC_JUPYTER), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
                "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JHUB_PROXY_IDLE_TIMEOUT": str(idle_timeout),
                "JHUB_TEST_RUN": marker.split("=", 1)[1]})
    port, token = free_port(), uuid.uuid4().hex
    log = tmp / "lab.log"
    process = subprocess.Popen(
        [str(venv / "bin" / "jupyter"), "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         "--JhubIdleProxy.interval=1"],
        cwd=home, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, home, process, marker, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"jupyter lab exited ({process.returncode}):\n{lab.log_text()[-4000:]}")
        try:
            if lab.get("/api/status", timeout=5)[0] == 200:
                return lab
        except OSError:
            pass
        time.sleep(0.5)
    stop_lab(lab)
    raise AssertionError(f"jupyter lab did not answer in 120 s:\n{lab.log_text()[-4000:]}")


def stop_lab(lab: Lab) -> None:
    """End the server, its process group, and anything of this run that left the group (a desktop session)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(lab.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            lab.process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    for _ in range(2):
        for pid in processes_with(lab.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.5)


def wait_until(predicate, timeout: float, step: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()
