"""hostscripts: how hosts/*.sh reach a node and how a step names the script it runs.

- the unit is a script: a step's command names its own script's hash (with lib.sh, which every script
  sources), so changing one script re-runs only the steps that run it, and changing lib.sh re-runs all;
- every node, local ones too, runs the copy under /var/lib/jhub/scripts/<unit>/: no stored command names
  the checkout's path, so moving the repository never breaks `pulumi destroy`;
- the archive the scripts travel in has the same bytes on every machine (no compressor in it)."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from components.cluster import hostscripts

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hosts_copy(tmp_path, monkeypatch):
    """hostscripts reading a copy of hosts/ that a test may edit."""
    copy = tmp_path / "hosts"
    shutil.copytree(REPO / "hosts", copy, ignore=shutil.ignore_patterns("README.md"))
    monkeypatch.setattr(hostscripts, "HOSTS_DIR", copy)
    hostscripts.clear_caches()
    yield copy
    hostscripts.clear_caches()


def commands(**env_by_script):
    return {name: hostscripts.command(name, env) for name, env in env_by_script.items()}


def test_changing_one_script_changes_only_the_commands_that_run_it(hosts_copy):
    before = commands(labels={"JHUB_NODE_NAME": "gpu02"}, install={"JHUB_MODE": "online"}, facts={})
    with open(hosts_copy / "labels.sh", "a") as f:
        f.write("# a fix in labels.sh\n")
    hostscripts.clear_caches()
    after = commands(labels={"JHUB_NODE_NAME": "gpu02"}, install={"JHUB_MODE": "online"}, facts={})
    assert after["labels"] != before["labels"]
    assert after["install"] == before["install"] and after["facts"] == before["facts"]


def test_changing_lib_sh_changes_every_command(hosts_copy):
    before = commands(labels={}, install={}, facts={})
    with open(hosts_copy / "lib.sh", "a") as f:
        f.write("# a fix in lib.sh\n")
    hostscripts.clear_caches()
    after = commands(labels={}, install={}, facts={})
    assert all(after[name] != before[name] for name in before)


def test_no_command_names_the_checkout():
    for name in ("install", "uninstall", "facts", "labels"):
        text = hostscripts.command(name, {})
        assert str(REPO) not in text and "/var/lib/jhub/scripts/" in text
        assert f"/{name}.sh" in text


def _members(archive_text: str) -> list[tarfile.TarInfo]:
    raw = base64.b64decode(archive_text)
    assert not raw.startswith(b"\x1f\x8b"), "no compressor: its output differs between zlib builds"
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
        return tar.getmembers()


def test_the_archive_is_byte_identical_everywhere():
    """A fixed input gives these exact bytes: a plain ustar archive with fixed owners, modes and times,
    entries sorted, then base64. Nothing in it depends on zlib, the clock, the user or the file system."""
    files = (("lib.sh", b"# lib\n"), ("b.sh", b"echo b\n"), ("a.sh", b"echo a\n"))
    text = hostscripts.archive(files)
    assert hashlib.sha256(text.encode()).hexdigest() == "0f34f32261172f4026c24d4c34d25c5bb1d83925e5832fb43bb1f1b79daf1945"
    assert text == hostscripts.archive(tuple(reversed(files)))
    members = _members(text)
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members} == {(0, 0, "", "", 0)}
    assert {m.mode for m in members if m.isfile()} == {0o644}


def test_every_script_ships_in_its_unit_folder_with_lib_sh():
    names = {m.name for m in _members(hostscripts.scripts_archive())}
    for path in sorted((REPO / "hosts").glob("*.sh")):
        if path.name == "lib.sh":
            continue
        unit = hostscripts.script_dir(path.stem).rsplit("/", 1)[-1]
        assert {f"{unit}/{path.name}", f"{unit}/lib.sh"} <= names


def test_install_command_unpacks_each_unit_once(tmp_path):
    base = tmp_path / "var-lib-jhub-scripts"
    run = lambda: subprocess.run(["sh", "-c", hostscripts.install_command(base=str(base))],  # noqa: E731
                                 input=hostscripts.scripts_archive(), capture_output=True, text=True)
    first = run()
    assert first.returncode == 0, first.stderr
    folder = Path(hostscripts.script_dir("labels", base=str(base)))
    assert (folder / "labels.sh").read_bytes() == (REPO / "hosts" / "labels.sh").read_bytes()
    assert (folder / "lib.sh").read_bytes() == (REPO / "hosts" / "lib.sh").read_bytes()
    assert oct(folder.stat().st_mode & 0o777) == "0o755"
    second = run()
    assert second.returncode == 0 and "already in place" in second.stderr and "installed" not in second.stderr
    assert not [p for p in base.iterdir() if p.name.startswith(".")], "no temporary folder left"
