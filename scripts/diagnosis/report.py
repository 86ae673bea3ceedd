"""What `jhub diag` found: sections of plain lines and problems, each problem with the command or config key
that fixes it; rendered as one screen or as JSON (the same data)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class Problem:
    message: str
    fix: str  # the command to run or the stack key to set


@dataclass
class Section:
    name: str
    lines: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # the facts the lines show, for --json

    def say(self, line: str) -> None:
        self.lines.append(line)

    def problem(self, message: str, fix: str) -> None:
        self.problems.append(Problem(message, fix))


def render(sections: list[Section]) -> str:
    out = []
    for section in sections:
        mark = "PROBLEM" if section.problems else "ok"
        out.append(f"== {section.name} [{mark}]")
        out += [f"   {line}" for line in section.lines]
        for problem in section.problems:
            out.append(f"!! {problem.message}")
            out.append(f"   fix: {problem.fix}")
    count = sum(len(s.problems) for s in sections)
    out.append(f"{count} problem(s) found" if count else "all well")
    return "\n".join(out)


def as_json(sections: list[Section]) -> str:
    body = {"ok": not any(s.problems for s in sections),
            "sections": [{"name": s.name, "ok": not s.problems, "lines": s.lines,
                          "problems": [asdict(p) for p in s.problems], "data": s.data} for s in sections]}
    return json.dumps(body, indent=2, sort_keys=True)
