"""Registry credentials and the `WWW-Authenticate` challenge.

Credentials are optional (public images need none) and come, first found wins, from the file named by
`REGISTRY_AUTH_FILE` (podman/skopeo `auth.json`), `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`:
`{"auths": {"<host>": {"auth": base64("user:password")}}}` (or `username`/`password`). Credential helpers
(`credsStore`, `credHelpers`) are not run: log in with `skopeo login --authfile` or write `auths` instead.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Optional

from . import BundleError

DOCKER_HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_PARAM = re.compile(r'([A-Za-z_]+)\s*=\s*"([^"]*)"')


def config_files(env: Optional[dict] = None) -> list[Path]:
    env = os.environ if env is None else env
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("DOCKER_CONFIG"):
        files.append(Path(env["DOCKER_CONFIG"]) / "config.json")
    files.append(Path(env.get("HOME", "~")).expanduser() / ".docker" / "config.json")
    return files


def _keys_for(host: str) -> tuple[str, ...]:
    if host in DOCKER_HUB_KEYS:
        return DOCKER_HUB_KEYS
    return (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/")


def credentials_for(host: str, files: Optional[list[Path]] = None) -> Optional[tuple[str, str]]:
    """(username, password) for a registry host, or None."""
    for path in config_files() if files is None else files:
        try:
            auths = json.loads(path.read_text()).get("auths") or {}
        except FileNotFoundError:
            continue
        except (OSError, ValueError, AttributeError) as error:
            raise BundleError(f"{path}: cannot read registry credentials ({error})") from None
        for key in _keys_for(host):
            entry = auths.get(key)
            if not isinstance(entry, dict):
                continue
            if entry.get("auth"):
                try:
                    user, colon, password = base64.b64decode(entry["auth"], validate=True).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    colon = ""
                if not colon:
                    raise BundleError(f"{path}: auths[{key!r}].auth is not base64 of 'user:password'")
                return user, password
            if entry.get("username"):
                return entry["username"], entry.get("password", "")
    return None


def basic(creds: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()


def parse_challenge(header: str) -> tuple[str, dict]:
    """`Bearer realm="...",service="...",scope="..."` -> ("bearer", {realm, service, scope})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), {key.lower(): value for key, value in _PARAM.findall(rest)}
