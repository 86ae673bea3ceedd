"""Where `jhub diag` reads from: the kubeconfig (a file, or the stack's `kubeconfig` output, a secret that is
never printed), the node facts (`--facts FILE` or the stack's `nodes` output), the stack's settings (the
hub's namespace, enabled features) and the cluster itself, through GETs only."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10


class CannotRun(Exception):
    """diag cannot look at the cluster at all (exit 2): the message says why, without secrets."""


def pulumi(*args: str, stack: str | None = None) -> str:
    """stdout of `pulumi ARGS` (with --stack); its output may hold secrets, so errors never quote it."""
    if shutil.which("pulumi") is None:
        raise CannotRun("no `pulumi` on PATH: give --kubeconfig FILE, or export the PATH of the Pulumi CLI")
    command = ["pulumi", *args] + (["--stack", stack] if stack else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise CannotRun(f"`pulumi {' '.join(args[:3])}` failed: {last}")
    return done.stdout


def kubeconfig(path: str | None, stack: str | None) -> dict:
    """The kubeconfig as a dict; from the stack's secret output when no file is given."""
    if path:
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise CannotRun(f"cannot read the kubeconfig {path}: {error.strerror}") from None
    else:
        text = pulumi("stack", "output", "kubeconfig", "--show-secrets", stack=stack)
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError:
        config = None
    if not isinstance(config, dict) or not config.get("clusters"):
        where = path or "the stack's kubeconfig output"
        raise CannotRun(f"{where} is not a kubeconfig (no clusters in it)")
    return config


def facts(path: str | None, stack: str | None, use_pulumi: bool) -> dict | None:
    """The stack's `nodes` output: node name -> {role, host, address, labels, facts}; None when unknown."""
    if path:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise CannotRun(f"cannot read the facts {path}: {error}") from None
    elif use_pulumi and shutil.which("pulumi"):
        try:
            data = json.loads(pulumi("stack", "output", "nodes", "--json", stack=stack) or "null")
        except (CannotRun, ValueError):
            return None
    else:
        return None
    if not isinstance(data, dict):
        return None
    for entry in data.values():
        if isinstance(entry, dict) and isinstance(entry.get("facts"), str):
            entry["facts"] = json.loads(entry["facts"])
    return data


def stack_settings(stack: str | None):
    """The stack's typed settings from Pulumi.<stack>.yaml (secrets not needed), or None without a stack."""
    if not stack:
        return None
    if not (ROOT / f"Pulumi.{stack}.yaml").is_file():
        raise CannotRun(f"no Pulumi.{stack}.yaml in {ROOT}")
    from scripts.bundle import stack_settings as read

    return read(stack)


class Cluster:
    """GETs against the API server with the real `kubernetes` client; answers are the API's JSON."""

    def __init__(self, config: dict) -> None:
        from kubernetes import client
        from kubernetes import config as kube_config

        self.errors = client.ApiException
        configuration = client.Configuration()
        # The client may write CA/cert data to temp files; a file of ours holds the config only while loading.
        with tempfile.TemporaryDirectory(prefix="jhub-diag-") as folder:
            file = Path(folder) / "kubeconfig"
            file.touch(mode=0o600)
            file.write_text(json.dumps(config))
            try:
                kube_config.load_kube_config(config_file=str(file), client_configuration=configuration)
            except Exception as error:  # the loader raises several kinds for a bad file
                raise CannotRun(f"the kubeconfig cannot be used: {type(error).__name__}") from None
        configuration.retries = 0
        self.server = configuration.host
        self.api = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def _json(self, call, *args, **query) -> dict:
        reply = call(*args, **{k: v for k, v in query.items() if v is not None}, _preload_content=False,
                     _request_timeout=TIMEOUT_S)
        return json.loads(reply.data)

    def reachable(self) -> None:
        """Raises CannotRun when the API server does not answer or refuses the credentials."""
        try:
            self.nodes()
        except self.errors as error:
            raise CannotRun(f"the API server at {self.server} answered {error.status} {error.reason}") from None
        except Exception as error:  # urllib3's connection errors
            raise CannotRun(f"the API server at {self.server} cannot be reached ({type(error).__name__})") from None

    def nodes(self) -> list[dict]:
        return self._json(self.core.list_node)["items"]

    def pods(self, namespace: str, label_selector: str | None = None) -> list[dict]:
        return self._json(self.core.list_namespaced_pod, namespace, label_selector=label_selector)["items"]

    def events(self, namespace: str, name: str) -> list[dict]:
        return self._json(self.core.list_namespaced_event, namespace,
                          field_selector=f"involvedObject.name={name}")["items"]

    def namespaces(self, label_selector: str) -> list[dict]:
        return self._json(self.core.list_namespace, label_selector=label_selector)["items"]

    def tls_secrets(self, namespace: str) -> list[dict]:
        return self._json(self.core.list_namespaced_secret, namespace,
                          field_selector="type=kubernetes.io/tls")["items"]

    def services(self, namespace: str) -> list[dict]:
        return self._json(self.core.list_namespaced_service, namespace)["items"]

    def cluster_object(self, group: str, version: str, plural: str, name: str) -> dict | None:
        try:
            return self._json(self.custom.get_cluster_custom_object, group, version, plural, name)
        except self.errors as error:
            if error.status == 404:
                return None
            raise

    def service_get(self, namespace: str, service: str, port: int | str, path: str) -> tuple[int, str]:
        """GET `path` of a Service through the API server's service proxy: (status, body text)."""
        try:
            reply = self.core.connect_get_namespaced_service_proxy_with_path(
                f"{service}:{port}", namespace, path.lstrip("/"), _preload_content=False,
                _request_timeout=TIMEOUT_S)
            return reply.status, reply.data.decode(errors="replace")
        except self.errors as error:
            body = error.body or error.reason or ""
            return error.status, body.decode(errors="replace") if isinstance(body, bytes) else str(body)
