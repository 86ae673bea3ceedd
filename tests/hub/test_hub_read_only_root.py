"""`readOnlyRootFilesystem`: the user pod's home directory is read-only too, and Jupyter writes its state at
start. The pod KubeSpawner builds moves that state to the /tmp emptyDir; the real jupyter_core, run as an
unprivileged user whose home is read-only, then finds a writable runtime and data directory (and without our
environment it fails, as the servers did)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hubtest_cluster import node
from hubtest_configs import configured, jhub_cfg, new_spawner, spawn_until_pod
from jhub_profiles import CPU_SLUG

PROBE = """
import json, os
from jupyter_core.paths import jupyter_data_dir, jupyter_path, jupyter_runtime_dir
from jupyter_core.utils import ensure_dir_exists
found = {}
for name, path in (("runtime", jupyter_runtime_dir()), ("data", jupyter_data_dir())):
    ensure_dir_exists(path, 0o700)  # what jupyter_server does at start (runtime dir, nbsignatures.db)
    with open(os.path.join(path, "probe"), "w") as f:
        f.write("ok")
    found[name] = path
found["kernels"] = jupyter_path("kernels")
print(json.dumps(found))
"""


@pytest.mark.asyncio
async def test_read_only_root_moves_jupyters_state_to_the_tmp_empty_dir(kube_api):
    kube_api.cluster["nodes"] = [node("cpu-1", cpu="16", memory="64Gi")]
    c = configured(jhub_cfg(spawner={"readOnlyRootFilesystem": True, "homeDir": "/home/jovyan"}), kube_api.url)
    pod = await spawn_until_pod(new_spawner(c, "alice"), {"profile": CPU_SLUG})
    main = pod["spec"]["containers"][0]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    tmp = next(m for m in main["volumeMounts"] if m["mountPath"] == "/tmp")
    assert next(v for v in pod["spec"]["volumes"] if v["name"] == tmp["name"])["emptyDir"] == {}
    env = {e["name"]: e.get("value") for e in main["env"]}
    for name in ("JUPYTER_RUNTIME_DIR", "JUPYTER_DATA_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR",
                 "IPYTHONDIR", "MPLCONFIGDIR", "XDG_CACHE_HOME"):
        assert env[name].startswith("/tmp/"), (name, env[name])
    assert env["JUPYTER_PATH"] == "/home/jovyan/.local/share/jupyter", "what the image installed stays found"
    plain = configured(jhub_cfg(), kube_api.url)
    plain_pod = await spawn_until_pod(new_spawner(plain, "bob"), {"profile": CPU_SLUG})
    plain_env = {e["name"] for e in plain_pod["spec"]["containers"][0]["env"]}
    assert "JUPYTER_RUNTIME_DIR" not in plain_env, "a writable root keeps Jupyter's own defaults"


@pytest.fixture
def pod_root():
    """A folder an unprivileged user can traverse (pytest's own temporary folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="jhub-pod-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def run_as_user_with_read_only_home(tmp_path, env: dict) -> subprocess.CompletedProcess:
    """PROBE in a fresh process whose HOME it cannot write (an unprivileged user), with `env` where /tmp
    stands for the pod's emptyDir (a fresh writable folder here)."""
    pytest.importorskip("jupyter_core", reason="jupyter-core (requirements/hub-test.txt) is not installed")
    home, empty_dir = tmp_path / "home" / "jovyan", tmp_path / "emptydir"
    (home / ".local" / "share" / "jupyter" / "kernels" / "lab-r").mkdir(parents=True)  # what the image installed
    empty_dir.mkdir()
    empty_dir.chmod(0o1777)
    for folder in (tmp_path, tmp_path / "home", home, *home.joinpath(".local").rglob("*"), home / ".local"):
        folder.chmod(0o755)
    mapped = {k: v.replace("/tmp/", f"{empty_dir}/").replace("/home/jovyan", str(home)) for k, v in env.items()}
    command = [sys.executable, "-c", PROBE]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv (util-linux): cannot drop to an unprivileged user")
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + command
    else:
        home.chmod(0o555)
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(command, env={**base, **mapped}, capture_output=True, text=True, timeout=60)


def test_jupyter_core_starts_with_a_read_only_home_only_with_our_environment(pod_root):
    from jhub_setup import read_only_state_env

    tmp_path = pod_root
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    without = run_as_user_with_read_only_home(tmp_path / "a", {})
    assert without.returncode != 0 and "PermissionError" in without.stderr, without.stderr[-2000:]
    assert ".local/share/jupyter" in without.stderr, "jupyter_core wanted to write in the home directory"
    ours = run_as_user_with_read_only_home(tmp_path / "b", read_only_state_env("/home/jovyan"))
    assert ours.returncode == 0, ours.stderr[-2000:]
    found = json.loads(ours.stdout)
    empty_dir = str(tmp_path / "b" / "emptydir")
    assert found["runtime"].startswith(empty_dir) and found["data"].startswith(empty_dir)
    assert str(tmp_path / "b" / "home" / "jovyan" / ".local" / "share" / "jupyter" / "kernels") in found["kernels"]
