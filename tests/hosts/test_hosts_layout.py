"""Scripts run from a folder on the host, as the components upload them to
/var/lib/jhub/scripts/<sha256 of the set>/ and run `bash <folder>/<script>.sh`: lib.sh is sourced from
the same folder, and nothing depends on the repository."""

from hostkit import HOSTS, copy_scripts
from test_hosts_install import bundle


def test_install_and_ready_run_from_a_copy_of_hosts_elsewhere(host, tmp_path):
    scripts = copy_scripts(tmp_path / "elsewhere" / "scripts")
    assert scripts.parent.name == "scripts" and len(scripts.name) == 64
    res = host.run("install", env=bundle(host), script_dir=scripts)
    assert "jhub[install]: installed microk8s rev 7229" in res.stderr
    host.seed_node_images()
    res = host.run("ready", env={"JHUB_WAIT_READY_TIMEOUT": "5"}, script_dir=scripts)
    assert "jhub[ready]: microk8s is ready" in res.stderr


def test_a_script_without_its_lib_sh_beside_it_fails_loudly(host, tmp_path):
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "ready.sh").write_text((HOSTS / "ready.sh").read_text())
    res = host.run("ready", env={}, script_dir=lonely, fails=True)
    assert "lib.sh: No such file or directory" in res.stderr
