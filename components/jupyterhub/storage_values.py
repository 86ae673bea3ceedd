"""Per-user storage, the shared volume and `/dev/shm` -> the chart's `singleuser.storage` and init container.

Every per-user path uses KubeSpawner's `{username}`: the same escaped name the pod name uses
(`jupyter-{user_server}`), so users with dots or capitals in their names work everywhere alike.

`shared-hostpath` and `nfs` mount the share's root (hostPath type `Directory`, so a node that lacks the
shared mount fails loudly instead of writing to its own disk) with `subPath: {username}`. A small init
container creates that directory and gives it to the user (uid/gid from `jhub:hub`) when its owner is
wrong; it never changes anything below it. Storage is mounted at `mountPath`, by default a new folder
`<homeDir>/storage` that the image does not ship: JupyterLab (started in the home directory, opening that
folder) shows it, and nothing the image installed in the home directory is hidden.
"""

from __future__ import annotations

from ..settings.hub import HubSettings
from ..settings.storage import SharedStorage, UserStorage

USER_VOLUME = "jhub-user-storage"
SHARED_VOLUME = "jhub-shared-storage"
SHM_VOLUME = "jhub-dev-shm"
OWNER_INIT = "jhub-storage-owner"
INIT_ROOT = "/jhub-storage-root"

# Runs through KubeSpawner's str.format expansion: {username} is filled in, so no other braces here.
OWNER_SCRIPT = """\
set -eu
dir="{root}/{{username}}"
mkdir -p "$dir"
if [ "$(stat -c %u:%g "$dir")" != "{uid}:{gid}" ]; then
  if ! chown {uid}:{gid} "$dir"; then
    echo "jhub: cannot give $dir to {uid}:{gid}; on NFS export the share with no_root_squash" >&2
    exit 1
  fi
  echo "jhub: $dir now belongs to {uid}:{gid}"
fi
"""


def _root_volume(storage: UserStorage) -> dict:
    if storage.type == "shared-hostpath":
        return {"hostPath": {"path": storage.host_path, "type": "Directory"}, "name": USER_VOLUME}
    return {"name": USER_VOLUME, "nfs": {"path": storage.path, "server": storage.server}}


def owner_init_container(hub: HubSettings) -> dict:
    script = OWNER_SCRIPT.format(root=INIT_ROOT, uid=hub.user_uid, gid=hub.user_gid)
    return {
        "command": ["sh", "-c", script],
        "image": hub.default_image.image,
        "name": OWNER_INIT,
        "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}, "requests": {"cpu": "10m", "memory": "16Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"add": ["CHOWN", "DAC_OVERRIDE", "FOWNER"], "drop": ["ALL"]},
            "runAsGroup": 0,
            "runAsNonRoot": False,
            "runAsUser": 0,
        },
        "volumeMounts": [{"mountPath": INIT_ROOT, "name": USER_VOLUME}],
    }


def _shared_volume(shared: SharedStorage) -> dict:
    if shared.type == "hostpath":
        return {"hostPath": {"path": shared.host_path, "type": "Directory"}, "name": SHARED_VOLUME}
    return {"name": SHARED_VOLUME, "nfs": {"path": shared.path, "readOnly": shared.read_only, "server": shared.server}}


def storage_values(hub: HubSettings) -> dict:
    """`singleuser.storage` for the chart."""
    storage, shared = hub.storage, hub.shared_storage
    shm = {"medium": "Memory"} | ({"sizeLimit": hub.shm_size} if hub.shm_size else {})
    volumes = {SHM_VOLUME: {"emptyDir": shm, "name": SHM_VOLUME}}
    mounts = {SHM_VOLUME: {"mountPath": "/dev/shm", "name": SHM_VOLUME}}
    if shared.enabled:
        volumes[SHARED_VOLUME] = _shared_volume(shared)
        mounts[SHARED_VOLUME] = {"mountPath": shared.mount_path, "name": SHARED_VOLUME,
                                 "readOnly": shared.read_only}
    values: dict = {"extraVolumeMounts": mounts, "extraVolumes": volumes}
    if storage.type == "local":
        values.update({
            "type": "dynamic",
            "capacity": storage.size,
            "homeMountPath": hub.storage_mount_path,
            "dynamic": {"pvcNameTemplate": "claim-{username}", "storageAccessModes": ["ReadWriteOnce"],
                        "storageClass": storage.storage_class, "volumeNameTemplate": "volume-{username}"},
        })
    else:
        values["type"] = "none"
        volumes[USER_VOLUME] = _root_volume(storage)
        mounts[USER_VOLUME] = {"mountPath": hub.storage_mount_path, "name": USER_VOLUME, "subPath": "{username}"}
    return values


def init_containers(hub: HubSettings) -> list[dict]:
    return [] if hub.storage.type == "local" else [owner_init_container(hub)]


def user_install_env(hub: HubSettings) -> dict[str, str]:
    """`singleuser.extraEnv`: what a user installs (`pip install --user`, `conda create`, `ipykernel install
    --user`, and the kernels image's languages: Julia's `Pkg.add`, Go modules, crates, NuGet packages, Scala
    dependencies) goes inside the storage folder, the one place that persists, wherever `mountPath` puts it.
    The notebook images (images/notebook/Dockerfile) default to the same for the default mountPath; Jupyter's
    runtime files (connection files, sockets) stay on the container's own disk. JULIA_DEPOT_PATH ends in `:`
    so that Julia still reads the image's own depot (IJulia) after the user's; programs a user installs with
    `go install` or `cargo install` go to `<storage>/.local/bin`, with pip's."""
    base = hub.storage_mount_path
    return {
        "CARGO_HOME": f"{base}/.cargo",
        "CARGO_INSTALL_ROOT": f"{base}/.local",
        "CONDA_ENVS_DIRS": f"{base}/.conda/envs",
        "CONDA_PKGS_DIRS": f"{base}/.conda/pkgs",
        "COURSIER_CACHE": f"{base}/.cache/coursier",
        "DOTNET_CLI_HOME": base,
        "GOBIN": f"{base}/.local/bin",
        "GOPATH": f"{base}/go",
        "JULIA_DEPOT_PATH": f"{base}/.julia:",
        "JUPYTER_DATA_DIR": f"{base}/.local/share/jupyter",
        "JUPYTER_RUNTIME_DIR": "/tmp/jupyter-runtime",
        "NUGET_PACKAGES": f"{base}/.nuget/packages",
        "PYTHONUSERBASE": f"{base}/.local",
    }
