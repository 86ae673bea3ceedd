"""A bad config stops the program before any resource is registered, with a message naming the key path."""

from __future__ import annotations

import json

import pytest

from components.settings import ConfigError
from tests.support.program import run_program, assert_refused

CP = {"name": "gpu01", "host": "10.0.0.1", "role": "control-plane"}
W2 = {"name": "gpu02", "host": "10.0.0.2"}
W3 = {"name": "gpu03", "host": "10.0.0.3"}
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\ntest\n-----END OPENSSH PRIVATE KEY-----\n"


def config(nodes=None, secret=False, **sections):
    values = {"jhub:nodes": json.dumps([CP, W2] if nodes is None else nodes),
              "jhub:offline": json.dumps({"mode": "online"})}
    for key, value in sections.items():
        values[f"jhub:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return values


# (id, config, secret keys, expected key path, expected words)
CASES = [
    ("role-master", config([CP, {**W2, "role": "master"}]), (),
     'jhub:nodes[1].role: must be "control-plane" or "worker", got "master"', ""),
    ("no-control-plane", config([{**CP, "role": "worker"}, W2]), (),
     "jhub:nodes:", "exactly one"),
    ("two-control-planes", config([CP, {**W2, "role": "control-plane"}]), (),
     "jhub:nodes[1].role:", "only one node"),
    ("empty-nodes", config([]), (), "jhub:nodes:", "at least one node"),
    ("nodes-missing", {"jhub:offline": json.dumps({"mode": "online"})}, (), "jhub:nodes:", "is required"),
    ("nodes-not-a-list", config(None) | {"jhub:nodes": json.dumps({"name": "x"})}, (),
     "jhub:nodes:", "must be a list"),
    ("nodes-plain-string", config(None) | {"jhub:nodes": "gpu01,gpu02"}, (),
     "jhub:nodes:", "must be a YAML/JSON object or list"),
    ("name-uppercase", config([{**CP, "name": "GPU01"}]), (), "jhub:nodes[0].name:", "lowercase"),
    ("name-underscore", config([CP, {**W2, "name": "gpu_02"}]), (), "jhub:nodes[1].name:", '"_"'),
    ("name-too-long", config([{**CP, "name": "a" * 64}]), (), "jhub:nodes[0].name:", "63"),
    ("name-empty-part", config([{**CP, "name": "gpu01..lab"}]), (), "jhub:nodes[0].name:", "node name"),
    ("name-duplicate", config([CP, {**W2, "name": "gpu01"}]), (), "jhub:nodes[1].name:", "already used"),
    ("host-duplicate", config([CP, {**W2, "host": "10.0.0.1"}]), (), "jhub:nodes[1].host:", "already used"),
    ("local-twice", config([{**CP, "host": "local", "address": "10.0.0.1"}, {**W2, "host": "local"}]), (),
     "jhub:nodes[1].host:", "one node only"),
    ("host-invalid", config([{**CP, "host": "bad host!"}]), (), "jhub:nodes[0].host:", "IP address or a DNS"),
    ("host-missing", config([{"name": "gpu01", "role": "control-plane"}]), (), "jhub:nodes[0].host:",
     "is required"),
    ("unknown-node-key", config([{**CP, "hostname": "x"}]), (), "jhub:nodes[0].hostname:",
     'unknown key "hostname"'),
    ("did-you-mean-node-key", config([{**CP, "hostkey": "ssh-ed25519 AAAA"}]), (),
     "jhub:nodes[0].hostkey:", 'did you mean "hostKey"'),
    ("label-bad-key", config([{**CP, "labels": {"bad key": "x"}}]), (), "jhub:nodes[0].labels:", "label key"),
    ("label-bad-value", config([{**CP, "labels": {"pool": "a b"}}]), (), "jhub:nodes[0].labels:", "invalid value"),
    ("label-kubelet-namespace", config([{**CP, "labels": {"kubernetes.io/hostname": "x"}}]), (),
     "jhub:nodes[0].labels:", "kubelet owns"),
    ("address-invalid", config([{**CP, "address": "10.0.0.300"}]), (), "jhub:nodes[0].address:", "IP address"),
    ("address-duplicate", config([{**CP, "address": "10.1.0.1"}, {**W2, "address": "10.1.0.1"}]), (),
     "jhub:nodes[1].address:", "already used"),
    ("interface-invalid", config([{**CP, "interface": "eth 0"}]), (), "jhub:nodes[0].interface:", "interface"),
    ("local-cp-needs-address", config([{**CP, "host": "local"}, W2]), (), "jhub:nodes[0].address:",
     "is required"),
    ("dns-control-plane-needs-address", config([{**CP, "host": "gpu01.lab.local"}, W2]), (),
     "jhub:nodes[0].address:", "by IP address"),
    ("ssh-field-on-local", config([{**CP, "host": "local", "user": "root"}]), (), "jhub:nodes[0].user:",
     "no effect"),
    ("node-port-range", config([CP, {**W2, "port": 0}]), (), "jhub:nodes[1].port:", "at least 1"),
    ("ssh-port-range", config(ssh={"port": 70000}), (), "jhub:ssh.port:", "at most 65535"),
    ("ssh-port-type", config(ssh={"port": "twenty-two"}), (), "jhub:ssh.port:", "whole number"),
    ("ssh-unknown-key", config(ssh={"username": "ubuntu"}), (), "jhub:ssh.username:", "unknown key"),
    ("ssh-bad-user", config(ssh={"user": "Bad User"}), (), "jhub:ssh.user:", "Unix user"),
    ("ssh-host-key-format", config(ssh={"hostKey": "AAAAC3Nz"}), (), "jhub:ssh.hostKey:", "ssh-keyscan"),
    ("ssh-key-not-secret", config(ssh={"privateKey": KEY}), (), "jhub:ssh.privateKey:", "--secret"),
    ("ssh-key-and-file", config(ssh={"privateKey": KEY, "privateKeyFile": "id"}), ("jhub:ssh",),
     "jhub:ssh.privateKeyFile:", "not both"),
    ("ssh-key-file-missing", config(ssh={"privateKeyFile": "/nonexistent/id_ed25519"}), (),
     "jhub:ssh.privateKeyFile:", "does not exist"),
    ("node-password-not-secret", config([CP, {**W2, "password": "hunter2"}]), (),
     "jhub:nodes[1].password:", "--secret"),
    ("channel-format", config(microk8s={"channel": "1.32"}), (), "jhub:microk8s.channel:", "1.32/stable"),
    ("channel-latest", config(microk8s={"channel": "latest/stable"}), (), "jhub:microk8s.channel:", "pinned"),
    ("channel-too-old", config(microk8s={"channel": "1.20/stable"}), (), "jhub:microk8s.channel:", "1.28"),
    ("addon-unknown", config(microk8s={"addons": ["dns", "hostpath"]}), (), "jhub:microk8s.addons:",
     'did you mean "hostpath-storage"'),
    ("addon-twice", config(microk8s={"addons": ["dns", "dns"]}), (), "jhub:microk8s.addons:", "twice"),
    ("dns-server-invalid", config(microk8s={"dnsServers": ["dns.local"]}), (), "jhub:microk8s.dnsServers",
     "IP address"),
    ("dns-both-ways", config(microk8s={"addons": ["dns:1.1.1.1"], "dnsServers": ["10.0.0.2"]}), (),
     "jhub:microk8s:", "not both"),
    ("drain-timeout", config(microk8s={"drainTimeout": "5 minutes"}), (), "jhub:microk8s.drainTimeout:",
     "duration"),
    ("microk8s-unknown-key", config(microk8s={"chanel": "1.32/stable"}), (), "jhub:microk8s.chanel:",
     'did you mean "channel"'),
    ("offline-mode", config() | {"jhub:offline": json.dumps({"mode": "offline"})}, (), "jhub:offline.mode:",
     '"air-gapped" or "online"'),
    ("offline-mirror-url", config() | {"jhub:offline": json.dumps({"mode": "online", "registryMirror": "harbor"})},
     (), "jhub:offline.registryMirror:", "http(s) URL"),
    ("offline-upstream", config() | {"jhub:offline": json.dumps(
        {"mode": "online", "registryMirror": "https://h", "registryUpstreams": {"docker.io": "v2/x"}})},
     (), "jhub:offline.registryUpstreams:", 'start with "/"'),
    ("air-gapped-internet-addon", config(microk8s={"addons": ["dns", "gpu"], "dnsServers": ["10.0.0.2"]})
     | {"jhub:offline": json.dumps({"mode": "air-gapped"})}, (), "jhub:microk8s.addons[1]:", "air-gapped"),
    ("air-gapped-dns-upstream", config() | {"jhub:offline": json.dumps({"mode": "air-gapped"})}, (),
     "jhub:microk8s.dnsServers:", "8.8.8.8"),
    ("port-bool", config(ssh={"port": True}), (), "jhub:ssh.port:", "whole number"),
    ("host-uppercase-local", config([{**CP, "host": "LOCAL"}]), (), "jhub:nodes[0].host:", "lowercase"),
    ("host-loopback", config([{**CP, "host": "127.0.0.1"}]), (), "jhub:nodes[0].host:", "loopback"),
    ("host-localhost", config([{**CP, "host": "localhost"}]), (), "jhub:nodes[0].host:", '"local"'),
    ("address-link-local", config([{**CP, "address": "169.254.10.1"}]), (), "jhub:nodes[0].address:",
     "link-local"),
    ("address-ipv6", config([{**CP, "address": "fd00::1"}]), (), "jhub:nodes[0].address:", "IPv4"),
    ("reset-bad-id", config([CP, {**W2, "reset": "again please"}]), (), "jhub:nodes[1].reset:", "short id"),
    ("dns-server-loopback", config(microk8s={"dnsServers": ["127.0.0.53"]}), (),
     "jhub:microk8s.dnsServers", "loopback"),
    ("dns-arg-loopback", config(microk8s={"addons": ["dns:127.0.0.53"]}), (), "jhub:microk8s:", "loopback"),
    ("addon-args-shell", config(microk8s={"addons": ["dns", "metallb:$(reboot)"]}), (), "jhub:microk8s.addons:",
     "addon name with optional arguments"),
    ("air-gapped-metallb", config(microk8s={"addons": ["dns", "metallb:10.0.0.100-10.0.0.110"],
                                            "dnsServers": ["10.0.0.2"]})
     | {"jhub:offline": json.dumps({"mode": "air-gapped"})}, (), "jhub:microk8s.addons[1]:", "offline bundle"),
    ("ca-without-mirror", config() | {"jhub:offline": json.dumps({"mode": "online", "registryCaFile": "ca.pem"})},
     (), "jhub:offline:", '"registryMirror" or "buildRegistry"'),
    ("build-registry-url", config() | {"jhub:offline": json.dumps(
        {"mode": "online", "buildRegistry": "https://harbor.local/jhub"})},
     (), "jhub:offline.buildRegistry:", 'such as "harbor.local/jhub" (no https://'),
    ("build-registry-no-project", config() | {"jhub:offline": json.dumps(
        {"mode": "online", "buildRegistry": "harbor.local"})}, (), "jhub:offline.buildRegistry:", '"harbor.local"'),
    ("build-registry-air-gapped", config(microk8s={"addons": ["dns"], "dnsServers": ["10.0.0.2"]})
     | {"jhub:offline": json.dumps({"buildRegistry": "harbor.local/jhub"})}, (), "jhub:offline:",
     "(harbor.local/jhub) applies in \"online\" mode or with \"registryMirror\""),
    ("build-registry-login-alone", config() | {"jhub:offline": json.dumps(
        {"mode": "online", "buildRegistryUsername": "robot"})}, (), "jhub:offline:", 'only apply with "buildRegistry"'),
    ("build-registry-user-without-password", config() | {"jhub:offline": json.dumps(
        {"mode": "online", "buildRegistry": "harbor.local/jhub", "buildRegistryUsername": "robot"})}, (),
     "jhub:offline:", "go together"),
    ("build-registry-password-plain", config() | {"jhub:offline": json.dumps(
        {"mode": "online", "buildRegistry": "harbor.local/jhub", "buildRegistryUsername": "robot",
         "buildRegistryPassword": "hunter2hunter2"})}, (), "jhub:offline.buildRegistryPassword:", "is a secret"),
    ("ca-file-missing", config() | {"jhub:offline": json.dumps(
        {"mode": "online", "registryMirror": "https://harbor.local", "registryCaFile": "/nonexistent/ca.pem"})},
     (), "jhub:offline.registryCaFile:", "does not exist"),
    ("command-timeout-short", config(ssh={"commandTimeout": "10s"}), (), "jhub:ssh.commandTimeout:", "60"),
    ("single-dns-control-plane", config([{**CP, "host": "gpu01.lab.local"}]), (), "jhub:nodes[0].address:",
     "by IP address"),
    ("offline-dir-missing", config([CP]) | {"jhub:offline": json.dumps({"mode": "online", "dir": "/nonexistent"})},
     (), "jhub:offline.dir", "lock file is missing"),
    ("unknown-top-key", config() | {"jhub:nodez": "[]"}, (), "jhub:nodez:", 'did you mean "jhub:nodes"'),
    ("gpu-pools-without-operator", config(gpu={"pools": [{"name": "a", "nodeSelector": {"pool": "a"}}]}), (),
     "jhub:gpu.pools:", "set jhub:gpu.operator: true"),
]


@pytest.mark.parametrize("values,secret_keys,where,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_config_names_the_key_and_registers_nothing(values, secret_keys, where, words):
    assert_refused(values, secret_keys, where, words)


def test_there_are_at_least_thirty_bad_configs():
    assert len(CASES) >= 30


def test_every_problem_is_one_line_and_all_are_reported_together():
    values = config([{**CP, "role": "master"}, {**W2, "name": "Gpu02"}], ssh={"port": 0})
    run = run_program(values)
    lines = str(run.error).splitlines()
    assert any(x.startswith("jhub:nodes[0].role:") for x in lines)
    assert any(x.startswith("jhub:nodes[1].name:") for x in lines)
    assert any(x.startswith("jhub:ssh.port:") for x in lines)
    assert all(x.startswith("jhub:") for x in lines)


def test_secret_values_never_appear_in_error_messages():
    values = config(ssh={"privateKey": 12345, "password": ["hunter2-secret"]})
    run = run_program(values, secret_keys=("jhub:ssh",))
    message = str(run.error)
    assert "jhub:ssh.privateKey:" in message
    assert "12345" not in message and "hunter2-secret" not in message
