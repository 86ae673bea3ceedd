"""The portal image recipe stays consistent with the code (no Docker engine here to build it)."""

from __future__ import annotations

import re
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[2] / "portal"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", (PORTAL / "Dockerfile").read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_installs_the_pinned_requirements_and_runs_python_m_portal_as_non_root():
    steps = instructions()
    kinds = [kind for kind, _ in steps]
    assert kinds[0] == "FROM" and steps[0][1].startswith("python:3.11")
    copies = [arg for kind, arg in steps if kind == "COPY"]
    assert copies[0] == "requirements.txt requirements-api.txt requirements-agent.txt /app/portal/"
    for name in copies[0].split()[:-1]:
        lines = [ln for ln in (PORTAL / name).read_text().splitlines() if ln and not ln.startswith("#")]
        assert lines and all("==" in ln for ln in lines), f"{name}: every dependency pinned"
    run = next(arg for kind, arg in steps if kind == "RUN")
    assert "requirements.txt" in run and "requirements-api.txt" in run and "requirements-agent.txt" in run
    assert kinds.index("COPY") < kinds.index("RUN") < len(kinds) - kinds[::-1].index("COPY") - 1  # deps cached
    user = next(arg for kind, arg in steps if kind == "USER")
    assert not user.startswith(("0", "root"))
    assert ("EXPOSE", "29781") in steps
    assert ("ENTRYPOINT", '["python", "-m", "portal"]') in steps and ("CMD", '["serve"]') in steps


def test_the_trial_database_lives_in_a_volume_the_runtime_user_owns():
    steps = instructions()
    kinds = [kind for kind, _ in steps]
    user = next(arg for kind, arg in steps if kind == "USER")
    uid, gid = user.split(":")
    assert ("ENV", "PORTAL_DATABASE_URL=sqlite:////data/portal.db") in steps
    assert ("VOLUME", "/data") in steps and kinds.index("VOLUME") < kinds.index("USER")
    made = next(arg for kind, arg in steps if kind == "RUN" and "/data" in arg)
    # made and handed to the runtime user before VOLUME (changes to a volume's path after it are lost)
    assert "mkdir -p /data" in made and f"chown {uid}:{gid} /data" in made
    assert steps.index(("RUN", made)) < kinds.index("VOLUME")
    assert f"--uid {uid}" in made  # the user the image runs as is the one that owns /data

    from portal.settings import load_settings

    url = dict(arg.split("=", 1) for kind, arg in steps if kind == "ENV" and "=" in arg and " " not in arg)
    assert load_settings(database_url=url["PORTAL_DATABASE_URL"]).database_url.get_secret_value().endswith(
        "/data/portal.db")


def test_the_image_does_not_carry_local_databases_or_caches():
    ignored = (PORTAL / ".dockerignore").read_text().split()
    assert {"**/__pycache__", "*.db", ".venv"} <= set(ignored)


def test_the_image_ships_plotly_js_from_the_pinned_wheel():
    pins = (PORTAL / "requirements-api.txt").read_text().splitlines()
    assert any(re.fullmatch(r"plotly==\d+\.\d+\.\d+", line) for line in pins)
    run = next(arg for kind, arg in instructions() if kind == "RUN" and "requirements-api.txt" in arg)
    assert "plotly.min.js" in run  # the build checks the file is there
    from portal.app.pages.static import FILES, PLOTLY_JS

    assert FILES[PLOTLY_JS].read_bytes().startswith(b"/**\n* plotly.js v")  # served from the installed wheel
    assert not list(PORTAL.rglob("plotly*.js"))  # never vendored into the repository
