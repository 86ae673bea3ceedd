"""The kernels image's last check (images/notebook/Dockerfile, target kernels): every language named on the
command line has a kernel that Jupyter finds outside any user's folder, and every kernel's program is there.

    python kernels-check.py python bash r julia ...

Prints each kernel it finds; exits 1 naming what is wrong (a missing language, a kernelspec in a user's
folder, a program that is not there), so a broken install fails the build instead of the first notebook.
"""

from __future__ import annotations

import os
import shutil
import sys

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.paths import jupyter_data_dir


def _inside(path: str, folder: str) -> bool:
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def problems(languages: list[str]) -> tuple[list[str], list[str]]:
    """(what was found, what is wrong)."""
    user_folders = [jupyter_data_dir(), os.path.expanduser("~")]
    found: dict[str, list[str]] = {}
    lines, wrong = [], []
    for name, entry in sorted(KernelSpecManager().get_all_specs().items()):
        spec, where = entry["spec"], entry["resource_dir"]
        language = str(spec.get("language", "")).lower()
        found.setdefault(language, []).append(name)
        lines.append(f"{name}: {language} in {where}")
        if any(_inside(where, folder) for folder in user_folders):
            wrong.append(f"kernel {name} is in a user's folder ({where}), not in the image's")
        argv = spec.get("argv") or []
        program = argv[0] if argv else ""
        if not program:
            wrong.append(f"kernel {name} has no argv")
        elif os.path.isabs(program):
            if not (os.path.isfile(program) and os.access(program, os.X_OK)):
                wrong.append(f"kernel {name}: its program {program} is missing or not executable")
        elif shutil.which(program) is None:
            wrong.append(f"kernel {name}: its program {program!r} is not on PATH")
    for language in languages:
        if language.lower() not in found:
            wrong.append(f"no kernel for {language} (languages found: {', '.join(sorted(found))})")
    return lines, wrong


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: kernels-check.py LANGUAGE...", file=sys.stderr)
        return 2
    lines, wrong = problems(argv)
    print("\n".join(lines))
    for line in wrong:
        print(f"kernels-check: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
