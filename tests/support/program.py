"""Run the whole Pulumi program under mocks, from real stack files, and record what it registers.

Each run gets a fresh context (Pulumi keeps its globals in ContextVars) and a fresh event loop, so many
runs fit in one test process. The recording monitor keeps every registration with its raw inputs, in
which Pulumi secrets are still wrapped, so tests can tell secret values from plain ones.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.stack import wait_for_rpcs

ROOT = Path(__file__).resolve().parents[2]
SECRET_SIG = rpc._special_sig_key  # "4dabf18193072939515e22adb298388d"
SECRET_MARK = rpc._special_secret_sig


@dataclass
class Registration:
    type: str
    name: str
    urn: str
    parent: str
    inputs: dict  # secrets still wrapped
    dependencies: list[str]
    delete_before_replace: bool
    additional_secret_outputs: list[str]
    custom: bool


@dataclass
class ProgramRun:
    registrations: list[Registration] = field(default_factory=list)
    error: Optional[BaseException] = None
    outputs: dict = field(default_factory=dict)
    secret_outputs: set = field(default_factory=set)

    def of_type(self, type_: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_]

    def named(self, name: str) -> Registration:
        found = [r for r in self.registrations if r.name == name]
        assert len(found) == 1, f"expected one resource named {name!r}, found {len(found)}"
        return found[0]

    def by_urn(self) -> dict[str, Registration]:
        return {r.urn: r for r in self.registrations}

    def resources(self) -> list[Registration]:
        """Everything but the stack itself."""
        return [r for r in self.registrations if r.type != "pulumi:pulumi:Stack"]


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, facts: Optional[dict[str, dict]] = None):
        self.facts = facts or {}  # node name -> extra facts its ready step prints (e.g. infiniband ports)
        # (type, name) of each registration whose inputs hold a secret, set by the monitor: pulumi-command
        # then makes every output of that Command secret, like the provider does. Keyed, not a flag:
        # registrations run on the SDK's thread pool, concurrently.
        self.secret_inputs: set[tuple[str, str]] = set()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        state = dict(args.inputs)
        metadata = state.get("metadata")
        if args.typ.startswith("kubernetes:") and isinstance(metadata, dict) and not metadata.get("name"):
            # Pulumi auto-names Kubernetes objects as `<resource name>-<random suffix>`.
            state["metadata"] = {**metadata, "name": f"{args.name}-5f3a9c1e"}
        if args.typ in ("command:local:Command", "command:remote:Command"):
            state.setdefault("stdout", _fake_stdout(args.name, self.facts))
            state.setdefault("stderr", "")
            if (args.typ, args.name) in self.secret_inputs:
                state["stdout"] = pulumi.Output.secret(state["stdout"])
                state["stderr"] = pulumi.Output.secret(state["stderr"])
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


def mock_address(node: str) -> str:
    """The address a node's address step "finds" under mocks: stable, distinct per node."""
    import zlib

    return f"10.0.{zlib.crc32(node.encode()) % 250}.{zlib.crc32(node[::-1].encode()) % 250 + 2}"


# Command name -> its stdout, for tests that need other facts (GPUs) or a step's result (the GPU smoke test).
FAKE_STDOUT: dict[str, str] = {}


def _fake_stdout(name: str, facts: Optional[dict[str, dict]] = None) -> str:
    if name in FAKE_STDOUT:
        return FAKE_STDOUT[name]
    if name.endswith("-ready"):  # the ready step prints the node's facts
        node = name[: -len("-ready")]
        return json.dumps({"hostname": node, "cpus": 8, "gpus": [], **(facts or {}).get(node, {})})
    if name.endswith("-address"):
        return mock_address(name[: -len("-address")]) + "\n"
    if name.endswith("-fingerprint"):  # the control plane's cluster agent certificate, as MicroK8s checks it
        return "0a1b2c3d4e5f\n"
    if name == "cluster-join-token":
        return "0123456789abcdef0123456789abcdef"
    if name.endswith("-kubeconfig"):
        return "apiVersion: v1\nkind: Config\nusers: [{name: admin, user: {token: KUBECONFIG-SECRET}}]\n"
    return ""


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    def __init__(self, mocks, run: ProgramRun):
        super().__init__(mocks)
        self.run = run

    def RegisterResource(self, request):
        if _holds_secret(rpc.deserialize_properties(request.object, keep_internal=False)):
            self.mocks.secret_inputs.add((request.type, request.name))
        response = super().RegisterResource(request)
        self.run.registrations.append(Registration(
            type=request.type,
            name=request.name,
            urn=response.urn,
            parent=request.parent,
            inputs=rpc.deserialize_properties(request.object, keep_internal=False),
            dependencies=list(request.dependencies),
            delete_before_replace=request.deleteBeforeReplace,
            additional_secret_outputs=list(request.additionalSecretOutputs),
            custom=request.custom,
        ))
        return response


def stack_config(stack_file: Path, overrides: Optional[dict[str, Any]] = None) -> dict[str, str]:
    """A stack file's `config:` as the runtime sees it: objects as JSON text, scalars as text."""
    data = yaml.safe_load(Path(stack_file).read_text()) or {}
    values = dict(data.get("config") or {})
    values.update(overrides or {})
    result = {}
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise ValueError(f"{stack_file}: {key} is encrypted; pass a test value in overrides")
        result[key] = value if isinstance(value, str) else json.dumps(value)
    return result


def with_test_key(config: dict[str, str]) -> dict[str, str]:
    """The stack's `jhub:ssh` pointed at the tests' SSH key (tests/stacks/test_ed25519), in place."""
    ssh = json.loads(config["jhub:ssh"])
    ssh["privateKeyFile"] = str(ROOT / "tests" / "stacks" / "test_ed25519")
    config["jhub:ssh"] = json.dumps(ssh)
    return config


def run_program(
    config: dict[str, str],
    *,
    secret_keys: tuple[str, ...] = (),
    stack: str = "dev",
    preview: bool = False,
    program: Path = ROOT / "__main__.py",
    facts: Optional[dict[str, dict]] = None,
) -> ProgramRun:
    """`facts`: node name -> facts its ready step prints beside the defaults (hosts/facts.sh's shape)."""
    return contextvars.Context().run(_run, config, secret_keys, stack, preview, program, facts)


def _run(config, secret_keys, stack, preview, program, facts=None) -> ProgramRun:
    result = ProgramRun()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = _Mocks(facts)
    pulumi.runtime.set_mocks(mocks, project="jhub", stack=stack, preview=preview,
                             monitor=_RecordingMonitor(mocks, result))
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    try:
        runpy.run_path(str(program), run_name="__main__")
    except Exception as error:  # the program's own error, e.g. a ConfigError
        result.error = error
    try:
        loop.run_until_complete(wait_for_rpcs())
        root = pulumi.runtime.settings.get_root_resource()
        for name, value in (getattr(root, "outputs", None) or {}).items():
            output = pulumi.Output.from_input(value)
            result.outputs[name] = loop.run_until_complete(output.future())
            if loop.run_until_complete(output.is_secret()):
                result.secret_outputs.add(name)
    except Exception as error:
        result.error = result.error or error
    finally:
        loop.close()
    return result


def _holds_secret(value: Any) -> bool:
    if is_secret_wrapper(value):
        return True
    if isinstance(value, dict):
        return any(_holds_secret(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_secret(item) for item in value)
    return False


def is_secret_wrapper(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK


def plain_strings(value: Any, path: str = ""):
    """Every (path, string) outside secret wrappers."""
    if is_secret_wrapper(value):
        return
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from plain_strings(item, f"{path}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from plain_strings(item, f"{path}[{index}]")


def assert_refused(values: dict[str, str], secret_keys: tuple[str, ...], where: str, words: str) -> None:
    """The program stops with a ConfigError line that starts with `where` and says `words`, and registers
    no resource."""
    from components.settings import ConfigError

    run = run_program(values, secret_keys=secret_keys)
    assert isinstance(run.error, ConfigError), f"expected a ConfigError, got {run.error!r}"
    message = str(run.error)
    line = next((x for x in message.splitlines() if x.startswith(where)), None)
    assert line is not None, f"no line starts with {where!r} in:\n{message}"
    assert words in line, f"{words!r} not in {line!r}"
    assert run.resources() == [], "a bad config must not register any resource"
