"""facts.sh: runs for real on this machine and prints one valid JSON object with typed fields."""

import json
import os
import shutil
import subprocess

from hostkit import HOSTS


def check_types(facts: dict) -> None:
    assert set(facts) == {"hostname", "os", "kernel", "arch", "cpus", "memoryBytes", "disk", "gpus",
                          "infiniband", "addresses", "defaultRouteAddress", "microk8s"}
    assert isinstance(facts["hostname"], str) and facts["hostname"]
    assert set(facts["os"]) == {"id", "version"}
    assert isinstance(facts["kernel"], str) and isinstance(facts["arch"], str)
    assert isinstance(facts["cpus"], int) and facts["cpus"] >= 1
    assert isinstance(facts["memoryBytes"], int) and facts["memoryBytes"] > 0
    assert [d["path"] for d in facts["disk"]] == ["/var/lib/snapd", "/var/snap", "/var/lib/jhub"]
    for d in facts["disk"]:
        assert isinstance(d["freeBytes"], int) and d["freeBytes"] >= 0
        assert d["path"].startswith(d["checkedPath"])
    for g in facts["gpus"]:
        assert set(g) == {"index", "model", "memoryMiB", "driver", "kernelModule", "pciAddress"}
        assert isinstance(g["index"], int) and isinstance(g["model"], str)
    for ib in facts["infiniband"]:
        assert set(ib) == {"device", "port", "state", "rate", "linkLayer", "netdevs"}
    for a in facts["addresses"]:
        assert set(a) == {"interface", "family", "address", "prefixLength"}
        assert a["family"] in ("inet", "inet6") and isinstance(a["prefixLength"], int)
    assert facts["defaultRouteAddress"] is None or isinstance(facts["defaultRouteAddress"], str)
    mk = facts["microk8s"]
    assert set(mk) == {"installed", "version", "revision", "channel", "running", "clustered", "role", "held",
                       "clusterId"}
    assert all(isinstance(mk[k], bool) for k in ("installed", "running", "clustered", "held"))


def test_facts_on_this_machine():
    """No JHUB_ROOT, no fakes: the real /etc/os-release, /proc, /sys, ip and df of this machine."""
    proc = subprocess.run(["bash", str(HOSTS / "facts.sh")], capture_output=True, text=True, check=True,
                          env={"PATH": os.environ["PATH"]})
    facts = json.loads(proc.stdout)
    assert proc.stdout.count("\n") == 1  # one object, one line
    check_types(facts)
    assert facts["hostname"] == os.uname().nodename
    assert facts["kernel"] == os.uname().release
    assert facts["cpus"] == os.sysconf("SC_NPROCESSORS_ONLN")
    with open("/etc/os-release") as f:
        osr = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    assert facts["os"]["id"] == osr["ID"].strip('"')
    if shutil.which("snap") is None:
        assert facts["microk8s"]["installed"] is False
    assert "facts collected" in proc.stderr


def test_facts_reads_sysfs_infiniband_gpus_and_escapes(host):
    """In a temporary root: InfiniBand ports, NVIDIA GPUs found by PCI id, odd os-release text."""
    host.write("/etc/os-release", 'ID=ubuntu\nVERSION_ID="22.04 \\"jammy\\" \t\\\\"\n')
    host.write("/proc/meminfo", "MemTotal:       16384 kB\nMemFree: 1 kB\n")
    for port, state, rate, ll in [("1", "4: ACTIVE", "200 Gb/sec (4X HDR)", "InfiniBand"),
                                  ("2", "1: DOWN", "10 Gb/sec (4X SDR)", "InfiniBand")]:
        host.write(f"/sys/class/infiniband/mlx5_0/ports/{port}/state", state + "\n")
        host.write(f"/sys/class/infiniband/mlx5_0/ports/{port}/rate", rate + "\n")
        host.write(f"/sys/class/infiniband/mlx5_0/ports/{port}/link_layer", ll + "\n")
    host.p("/sys/class/infiniband/mlx5_0/device/net/ib0").mkdir(parents=True)
    for addr, vendor, cls, dev in [("0000:17:00.0", "0x10de", "0x030200", "0x20b2"),
                                   ("0000:03:00.0", "0x10de", "0x030000", "0x2204"),
                                   ("0000:00:1f.0", "0x8086", "0x060100", "0x1234"),
                                   ("0000:17:00.1", "0x10de", "0x040300", "0x1aef")]:
        for k, v in (("vendor", vendor), ("class", cls), ("device", dev)):
            host.write(f"/sys/bus/pci/devices/{addr}/{k}", v + "\n")
    host.p("/sys/bus/pci/drivers/nvidia").mkdir(parents=True)
    host.p("/sys/bus/pci/devices/0000:17:00.0/driver").symlink_to(host.p("/sys/bus/pci/drivers/nvidia"))
    host.write("/sys/module/nvidia/version", "550.54.15\n")
    host.write("/var/lib/jhub/cluster-id", "lab-1\n")

    res = host.run("facts")
    facts = json.loads(res.stdout)
    check_types(facts)
    # taken verbatim between the quotes; quotes, backslashes and tabs are escaped into valid JSON
    assert facts["os"] == {"id": "ubuntu", "version": '22.04 \\"jammy\\" \t\\\\'}
    assert facts["memoryBytes"] == 16384 * 1024
    assert facts["infiniband"] == [
        {"device": "mlx5_0", "port": 1, "state": "ACTIVE", "rate": "200 Gb/sec (4X HDR)",
         "linkLayer": "InfiniBand", "netdevs": ["ib0"]},
        {"device": "mlx5_0", "port": 2, "state": "DOWN", "rate": "10 Gb/sec (4X SDR)",
         "linkLayer": "InfiniBand", "netdevs": ["ib0"]},
    ]
    # NVIDIA display (0300) and 3D (0302) controllers only, in PCI order; not the audio function
    assert facts["gpus"] == [
        {"index": 0, "model": "NVIDIA [10de:2204]", "memoryMiB": None, "driver": None, "kernelModule": None,
         "pciAddress": "0000:03:00.0"},
        {"index": 1, "model": "NVIDIA [10de:20b2]", "memoryMiB": None, "driver": "550.54.15",
         "kernelModule": "nvidia", "pciAddress": "0000:17:00.0"},
    ]
    assert facts["disk"][2]["checkedPath"] == "/var/lib/jhub"
    assert facts["microk8s"]["installed"] is False
    assert facts["microk8s"]["clusterId"] == "lab-1"


def test_facts_reports_microk8s(host):
    host.install_microk8s("7229")
    host.fake_cmd("snap", "refresh", "--hold=forever", "microk8s")
    host.add_node("vm1")
    host.add_node("gpu02")
    facts = json.loads(host.run("facts").stdout)
    assert facts["microk8s"] == {"installed": True, "version": "v1.32.3", "revision": "7229", "channel": None,
                                 "running": True, "clustered": True, "role": "control-plane", "held": True,
                                 "clusterId": None}
    # a worker: MicroK8s's clustered lock
    host.p("/var/snap/microk8s/current/var/lock/clustered.lock").touch()
    mk = json.loads(host.run("facts").stdout)["microk8s"]
    assert (mk["role"], mk["clustered"], mk["running"]) == ("worker", True, True)


def test_facts_reads_nvidia_smi_when_present(tmp_path):
    """No GPU here, so a stand-in prints what nvidia-smi prints for this query on a real H100 host
    (csv,noheader,nounits); facts must turn it into typed entries."""
    fake = tmp_path / "bin"
    fake.mkdir()
    smi = fake / "nvidia-smi"
    smi.write_text("#!/bin/sh\n"
                   "case \"$*\" in *--query-gpu=index,name,memory.total,driver_version,pci.bus_id*) ;; *) exit 9;; esac\n"
                   "echo '0, NVIDIA H100 80GB HBM3, 81559, 550.54.15, 00000000:18:00.0'\n"
                   "echo '1, NVIDIA H100 80GB HBM3, 81559, 550.54.15, 00000000:2A:00.0'\n")
    smi.chmod(0o755)
    proc = subprocess.run(["bash", str(HOSTS / "facts.sh")], capture_output=True, text=True, check=True,
                          env={"PATH": f"{fake}:{os.environ['PATH']}"})
    facts = json.loads(proc.stdout)
    check_types(facts)
    assert facts["gpus"] == [
        {"index": 0, "model": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "driver": "550.54.15",
         "kernelModule": "nvidia", "pciAddress": "00000000:18:00.0"},
        {"index": 1, "model": "NVIDIA H100 80GB HBM3", "memoryMiB": 81559, "driver": "550.54.15",
         "kernelModule": "nvidia", "pciAddress": "00000000:2A:00.0"},
    ]
