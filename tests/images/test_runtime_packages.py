"""The notebook image's own Python packages (images/notebook/requirements.txt), installed as the image
installs them (`pip install --no-deps -r`): complete on their own, the hub's jupyterhub version, and a
user's `pip install` landing in the persistent home, importable from a new process."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import zipfile
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.images.runtime_support import (REQUIREMENTS, ROOT, dockerfile_env, image_env, image_venv,
                                          own_site_packages)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def venv() -> Path:
    return image_venv()


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = version
    return found


def test_every_line_is_pinned_exactly():
    lines = [line.strip() for line in REQUIREMENTS.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert lines, "requirements.txt is empty"
    loose = [line for line in lines if not re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", line)]
    assert not loose, f"not pinned with ==: {loose}"
    names = [canonicalize_name(line.split("==")[0]) for line in lines]
    assert len(names) == len(set(names)), "a package is listed twice"


def unmet_requirements(site: Path) -> list[str]:
    """Requirements of the packages in ``site`` that ``site`` alone does not meet (extras not asked for are
    left out): what a `pip install --no-deps -r` of an incomplete file would leave broken."""
    installed = {canonicalize_name(dist.metadata["Name"]): dist for dist in distributions(path=[str(site)])}
    unmet = []
    for name, dist in sorted(installed.items()):
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue
            have = installed.get(canonicalize_name(requirement.name))
            if have is None or not requirement.specifier.contains(have.version, prereleases=True):
                unmet.append(f"{name} needs {requirement} (has {have.version if have else 'nothing'})")
    return unmet


def test_the_file_is_complete_on_its_own(venv):
    site = own_site_packages(venv)
    assert unmet_requirements(site) == []
    installed = {canonicalize_name(dist.metadata["Name"]) for dist in distributions(path=[str(site)])}
    missing = sorted(set(pins(REQUIREMENTS)) - installed)
    assert missing == [], f"listed but not installed: {missing}"


def test_the_launcher_and_extension_packages_are_there(venv):
    wanted = {"jupyterlab", "jupyterhub", "jupyter-server-proxy", "jupyter-remote-desktop-proxy", "tensorboard",
              "jupyterlab-git", "jupyterlab-lsp", "python-lsp-server", "jupyter-resource-usage",
              "jupyterlab-nvdashboard", "jupyterlab-code-formatter", "black", "isort"}
    assert wanted <= set(pins(REQUIREMENTS)), sorted(wanted - set(pins(REQUIREMENTS)))


def test_singleuser_is_the_hubs_jupyterhub(venv):
    hub = pins(ROOT / "requirements" / "hub.txt")["jupyterhub"]
    assert pins(REQUIREMENTS)["jupyterhub"].split(".")[0] == hub.split(".")[0]
    version = subprocess.run([str(venv / "bin" / "jupyterhub-singleuser"), "--version"], capture_output=True,
                             text=True, timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == pins(REQUIREMENTS)["jupyterhub"]


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def probe_wheel(folder: Path) -> Path:
    """A tiny pure-Python wheel (a module and a console script), written here: no index is needed."""
    files = {
        "jhub_probe.py": b"def main():\n    print('probe', __file__)\n",
        "jhub_probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: jhub-probe\nVersion: 1.0\n",
        "jhub_probe-1.0.dist-info/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
                                           b"Tag: py3-none-any\n",
        "jhub_probe-1.0.dist-info/entry_points.txt": b"[console_scripts]\njhub-probe = jhub_probe:main\n",
    }
    record = [_record_line(name, data) for name, data in files.items()] + ["jhub_probe-1.0.dist-info/RECORD,,"]
    wheel = folder / "jhub_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr("jhub_probe-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel


def test_a_users_pip_install_lands_in_the_persistent_home_and_survives_a_new_process(venv, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = image_env(home, venv)
    wheel = probe_wheel(tmp_path)
    # What a user types in a terminal of the image: plain `pip install` (the image sets PIP_USER=1).
    install = subprocess.run(["pip", "install", "--no-index", str(wheel)], env=env, cwd=home,
                             capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stdout + install.stderr
    user_base = Path(env["PYTHONUSERBASE"])
    assert user_base.is_relative_to(home)
    assert list(user_base.glob("lib/python3*/site-packages/jhub_probe.py"))
    assert not list(own_site_packages(venv).glob("jhub_probe*")), "the install went into the image's Python"
    # A new process (a new kernel, or the server after a restart) imports it and runs its script from PATH.
    run = subprocess.run(["python", "-c", "import jhub_probe; print(jhub_probe.__file__)"], env=env, cwd=home,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).is_relative_to(user_base)
    script = subprocess.run(["jhub-probe"], env=env, cwd=home, capture_output=True, text=True, timeout=60)
    assert script.returncode == 0, script.stderr
    assert str(user_base) in script.stdout


def test_the_image_sends_user_installs_to_the_persistent_home():
    """The contract etc/README.md states, on the Dockerfile's own ENV lines where the checkout has it."""
    if not (ROOT / "images" / "notebook" / "Dockerfile").exists():
        pytest.skip("images/notebook/Dockerfile is not in this checkout; the tests use the documented values")
    env = dockerfile_env()
    assert env.get("PIP_USER") == "1"
    assert env.get("PYTHONUSERBASE", "").startswith("/home/jovyan/")
    assert env["PATH"].split(":")[0] == env["PYTHONUSERBASE"] + "/bin"
