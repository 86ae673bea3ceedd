"""The notebook image definition read as data: its stages, build args, environment and steps, with the
stage each target inherits from (dockerfile-parse does the lexing; this keeps the stage graph)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser

from tests.support.program import ROOT

IMAGES = ROOT / "images"
NOTEBOOK = IMAGES / "notebook"
DOCKERFILE = NOTEBOOK / "Dockerfile"
REQUIREMENTS = NOTEBOOK / "requirements.txt"  # the image's own packages (the runtime half of the image)
PIN_RE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[A-Za-z0-9.+!-]+)$")


@dataclass
class Stage:
    name: str
    base: str  # what FROM names: another stage, or an image (after global build args are substituted)
    args: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    steps: list[tuple[str, str]] = field(default_factory=list)  # (instruction, value) in order, ENV too


@dataclass
class Definition:
    global_args: dict[str, str]
    stages: dict[str, Stage]

    def chain(self, target: str, variant: str) -> list[Stage]:
        """The stages a target is built from, first to last, for one VARIANT build arg."""
        found: list[Stage] = []
        name = target
        while name in self.stages:
            stage = self.stages[name]
            found.insert(0, stage)
            name = stage.base.replace("${VARIANT}", variant)
        return found

    def base_image(self, target: str, variant: str) -> str:
        first = self.chain(target, variant)[0].base
        return re.sub(r"\$\{(\w+)\}", lambda m: self.global_args[m.group(1)], first)

    def steps(self, target: str, variant: str) -> list[tuple[str, str]]:
        return [step for stage in self.chain(target, variant) for step in stage.steps]

    def arg(self, target: str, variant: str, name: str) -> str:
        for stage in reversed(self.chain(target, variant)):
            if name in stage.args:
                return stage.args[name]
        return self.global_args[name]

    def env(self, target: str, variant: str) -> dict[str, str]:
        merged: dict[str, str] = {}
        for stage in self.chain(target, variant):
            merged.update(stage.env)
        return merged


def _pairs(value: str) -> dict[str, str]:
    """`A=1 B="two words"` (ENV/ARG); a bare `A` has no default."""
    out = {}
    for word in shlex.split(value):
        key, _, val = word.partition("=")
        out[key] = val
    return out


def load(path: Path = DOCKERFILE) -> Definition:
    parser = DockerfileParser(str(path))
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    current = None
    for item in parser.structure:
        instruction, value = item["instruction"], item["value"]
        if instruction == "COMMENT":
            continue
        if instruction == "FROM":
            words = value.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else words[0]
            current = stages[name] = Stage(name=name, base=words[0])
        elif current is None:
            if instruction == "ARG":
                global_args.update(_pairs(value))
        elif instruction == "ARG":
            current.args.update(_pairs(value))
        elif instruction == "ENV":
            current.env.update(_pairs(value))
            current.steps.append((instruction, value))
        else:
            current.steps.append((instruction, value))
    return Definition(global_args=global_args, stages=stages)


def pins(path: Path) -> dict[str, str]:
    """`name==version` lines of a requirements file, by normalized name; anything else is an error."""
    found = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = PIN_RE.match(line)
        assert match, f"{path.name}:{number}: not an exact pin: {line!r}"
        found[normalize(match.group("name"))] = match.group("version")
    return found


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
