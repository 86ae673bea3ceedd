"""The kernels image's build-time check (images/notebook/kernels-check.py), run by the image's own Python
packages (jupyter_client's KernelSpecManager, what `jupyter kernelspec list` reads) on kernelspec folders
laid out as the installers lay them out: it passes when each language has a system-wide kernel whose
program is there, and fails, naming the problem, for a missing language, a kernel in a user's folder, or a
kernel whose program is missing.

Julia, Go, Rust, .NET and Scala themselves are not installable here (no registry this machine reaches holds
them or their kernels: README "Notebook images"); their install steps are checked on the definition
(tests/images/test_definition.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.images.runtime_support import IMAGE, image_venv
from tests.images.test_definition import LANGUAGES

pytestmark = pytest.mark.slow
CHECK = IMAGE / "kernels-check.py"


@pytest.fixture(scope="module")
def python() -> Path:
    return image_venv() / "bin" / "python"


def spec(folder: Path, name: str, language: str, program: str) -> None:
    (folder / "kernels" / name).mkdir(parents=True)
    (folder / "kernels" / name / "kernel.json").write_text(json.dumps(
        {"argv": [program, "{connection_file}"], "display_name": name, "language": language}))


def run(python: Path, tmp: Path, languages=sorted(LANGUAGES)) -> subprocess.CompletedProcess:
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    # the image's PATH: its Python first (ipykernel's own python3 kernelspec runs `python`)
    env = {"PATH": f"{python.parent}:/usr/bin:/bin", "HOME": str(home), "JUPYTER_PATH": str(tmp / "system"),
           "JUPYTER_DATA_DIR": str(home / ".local/share/jupyter"), "JUPYTER_CONFIG_DIR": str(home / ".jupyter")}
    return subprocess.run([str(python), str(CHECK), *languages], env=env, capture_output=True, text=True,
                          timeout=120)


def image_like(tmp: Path) -> Path:
    """One system-wide kernel a language, named and launched as the image's installers name them."""
    system = tmp / "system"
    programs = {"python": "/bin/true", "bash": "/bin/true", "r": "true", "octave": "/bin/true",
                "javascript": "/bin/true", "julia": "/bin/true", "go": "/bin/true", "rust": "/bin/true",
                "c#": "true", "scala": "/bin/true"}
    names = {"python": "python-image", "bash": "bash", "r": "ir", "octave": "octave", "javascript": "javascript",
             "julia": "julia-1.12", "go": "gonb", "rust": "rust", "c#": ".net-csharp", "scala": "scala"}
    for language, program in programs.items():
        spec(system, names[language], language.upper() if language in ("r", "c#") else language, program)
    spec(system, ".net-fsharp", "F#", "true")
    return system


def test_every_language_with_a_system_wide_kernel_passes(python, tmp_path):
    image_like(tmp_path)
    done = run(python, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("gonb: go", "julia-1.12: julia", ".net-csharp: c#", "scala: scala", "rust: rust"):
        assert name in done.stdout, done.stdout


def test_a_missing_language_fails_the_build(python, tmp_path):
    system = image_like(tmp_path)
    for child in (system / "kernels" / "scala").iterdir():
        child.unlink()
    (system / "kernels" / "scala").rmdir()
    done = run(python, tmp_path)
    assert done.returncode == 1
    assert "no kernel for scala" in done.stderr, done.stderr


def test_a_kernel_in_a_users_folder_fails_the_build(python, tmp_path):
    """What `evcxr_jupyter --install` or `gonb --install` do without JUPYTER_PATH / JUPYTER_DATA_DIR: the
    kernel lands in root's (here: the user's) data folder, which the image's users would not see."""
    system = image_like(tmp_path)
    for child in (system / "kernels" / "rust").iterdir():
        child.unlink()
    (system / "kernels" / "rust").rmdir()
    spec(tmp_path / "home" / ".local/share/jupyter", "rust", "rust", "/bin/true")
    done = run(python, tmp_path)
    assert done.returncode == 1
    assert "kernel rust is in a user's folder" in done.stderr, done.stderr


@pytest.mark.parametrize("program", ["/opt/julia/bin/julia", "dotnet"])
def test_a_kernel_whose_program_is_missing_fails_the_build(python, tmp_path, program):
    system = image_like(tmp_path)
    spec(system, "julia-broken", "julia", program)
    done = run(python, tmp_path)
    assert done.returncode == 1
    assert "kernel julia-broken: its program" in done.stderr and program in done.stderr, done.stderr
