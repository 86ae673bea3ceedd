"""kubeconfig.sh: the admin kubeconfig on stdout, server set to the control-plane address."""


def test_kubeconfig_has_the_given_server_and_nothing_else_on_stdout(host):
    host.install_microk8s()
    host.set_state("microk8s", server="10.1.0.5")
    before = host.snapshot()
    res = host.run("kubeconfig", env={"JHUB_SERVER_ADDRESS": "192.168.10.11"})
    assert res.stdout.startswith("apiVersion: v1\n")
    servers = [line.strip() for line in res.stdout.splitlines() if "server:" in line]
    assert servers == ["server: https://192.168.10.11:16443"]
    assert "client-key-data" in res.stdout and "client-key-data" not in res.stderr
    assert res.lines() == ["microk8s config"]
    assert host.snapshot() == before


def test_ipv6_and_dns_names(host):
    host.install_microk8s()
    res = host.run("kubeconfig", env={"JHUB_SERVER_ADDRESS": "fd00::11"})
    assert "    server: https://[fd00::11]:16443\n" in res.stdout
    res = host.run("kubeconfig", env={"JHUB_SERVER_ADDRESS": "cp.lab.local"})
    assert "    server: https://cp.lab.local:16443\n" in res.stdout


def test_bad_address_and_missing_microk8s(host):
    res = host.run("kubeconfig", env={"JHUB_SERVER_ADDRESS": "https://x"}, fails=True)
    assert "JHUB_SERVER_ADDRESS must be an IP address or DNS name" in res.stderr and res.stdout == ""
    res = host.run("kubeconfig", env={"JHUB_SERVER_ADDRESS": "10.0.0.1"}, fails=True)
    assert "'microk8s config' failed" in res.stderr and res.stdout == ""
