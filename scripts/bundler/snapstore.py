"""Snaps and their assertions from the snap store's HTTP API, as `snap download` gets them.

1. `POST /v2/snaps/refresh` with a `download` action (name + channel, or the locked revision), headers
   `Snap-Device-Series: 16` and `Snap-Device-Architecture: amd64`: the store answers the revision, snap-id
   and `download: {url, size, sha3-384 (hex)}`.
2. The file, resumable, checked against that size and sha3-384.
3. From `GET /v2/assertions/<type>/<primary key>` (`Accept: application/x.ubuntu.assertion`):
   `snap-revision/<sha3-384 of the file, url-safe base64>`, `snap-declaration/16/<snap-id>`,
   `account/<publisher-id>` and `account-key/<sign-key-sha3-384>` of every key that signed them. The
   assertion headers must agree with the file (sha3-384, size) and with each other (snap-id, name, revision,
   publisher, key ids); the nodes' snapd checks the signatures when `snap ack` loads the file.

`JHUB_SNAP_STORE_URL` points at another store (a proxy, or the tests' local server).
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import BundleError
from .fetch import Expected, download, file_digest, request

STORE = "https://api.snapcraft.io"
ASSERTION_TYPE = "application/x.ubuntu.assertion"
TRUSTED_ACCOUNTS = {"canonical"}  # built into snapd with the root key; never in a download's .assert
SERIES = "16"


def sha3_384_b64(hexdigest: str) -> str:
    """The store's hex digest as assertions write it: url-safe base64 without padding."""
    return base64.urlsafe_b64encode(bytes.fromhex(hexdigest)).decode().rstrip("=")


def assertion_headers(text: str) -> dict:
    """Top-level `key: value` headers of one assertion (nested/multi-line values are skipped)."""
    headers = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        if line and not line[0].isspace() and ": " in line:
            key, value = line.split(": ", 1)
            headers[key] = value.strip()
    return headers


@dataclass(frozen=True)
class Snap:
    name: str
    snap_id: str
    revision: int
    url: str
    size: int
    sha3_384_hex: str


class SnapStore:
    def __init__(self, base: Optional[str] = None, *, architecture: str = "amd64", timeout: float = 60):
        self.base = (base or os.environ.get("JHUB_SNAP_STORE_URL") or STORE).rstrip("/")
        self.architecture, self.timeout = architecture, timeout

    def find(self, name: str, channel: str, revision: Optional[int] = None) -> Snap:
        action = {"action": "download", "instance-key": f"download-{name}", "name": name}
        action.update({"revision": revision} if revision else {"channel": channel})
        body = json.dumps({"context": [], "actions": [action],
                           "fields": ["download", "revision", "snap-id", "name", "version"]}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Snap-Device-Series": SERIES, "Snap-Device-Architecture": self.architecture}
        wanted = f"snap {name} " + (f"revision {revision}" if revision else f"channel {channel}")
        response = request(f"{self.base}/v2/snaps/refresh", method="POST", data=body, headers=headers,
                           timeout=self.timeout)
        with response:
            raw = response.read()
        try:
            answer = json.loads(raw)
        except ValueError:
            raise BundleError(f"{wanted}: the store answered HTTP {response.status} with no JSON") from None
        if response.status != 200:
            errors = "; ".join(e.get("message", "") for e in answer.get("error-list") or [])
            raise BundleError(f"{wanted}: the store answered HTTP {response.status} ({errors})")
        for result in answer.get("results") or []:
            if result.get("instance-key") != action["instance-key"]:
                continue
            if result.get("result") == "error":
                error = result.get("error") or {}
                raise BundleError(f"{wanted} for {self.architecture}: {error.get('code')}: {error.get('message')}")
            snap, fetched = result.get("snap") or {}, (result.get("snap") or {}).get("download") or {}
            try:
                return Snap(name, result.get("snap-id") or snap["snap-id"], int(snap["revision"]), fetched["url"],
                            int(fetched["size"]), fetched["sha3-384"])
            except (KeyError, TypeError, ValueError) as error:
                raise BundleError(f"{wanted}: the store's answer lacks {error}") from None
        raise BundleError(f"{wanted}: the store's answer has no result for it")

    def assertion(self, kind: str, *keys: str) -> str:
        url = f"{self.base}/v2/assertions/{kind}/" + "/".join(keys)
        response = request(url, headers={"Accept": ASSERTION_TYPE}, timeout=self.timeout)
        with response:
            body = response.read().decode(errors="replace")
        if response.status != 200:
            raise BundleError(f"no {kind} assertion {'/'.join(keys)} in the store (HTTP {response.status}); "
                              "the file cannot be verified")
        if assertion_headers(body).get("type") != kind:
            raise BundleError(f"the store's {kind} assertion {'/'.join(keys)} is not one")
        return body.strip("\n")


def _require(label: str, headers: dict, key: str, want) -> None:
    if headers.get(key) != str(want):
        raise BundleError(f"{label}: its {key} is {headers.get(key)!r}, expected {want!r}; nothing was recorded")


def fetch_snap(entry: dict, images_dir: Path, *, store: Optional[SnapStore] = None, refresh: bool = False) -> None:
    """Download entry's snap and write its .assert; records revision, sha3_384 and both sha256s."""
    store = store or SnapStore()
    pinned = None if refresh else entry.get("revision")
    snap = store.find(entry["name"], entry["channel"], pinned)
    target = images_dir / entry["file"]
    download(lambda offset: _open_snap(snap, offset, store.timeout), target,
             Expected("sha3_384", snap.sha3_384_hex, snap.size), f"snap {snap.name} rev {snap.revision}")
    try:
        texts, revision = _assertions(store, snap, target)
    except BundleError:
        target.unlink(missing_ok=True)
        raise
    assert_path = images_dir / entry["assertion"]
    tmp = assert_path.with_name(assert_path.name + ".tmp")
    tmp.write_text("\n\n".join(texts) + "\n")
    os.replace(tmp, assert_path)
    entry["revision"] = int(revision["snap-revision"])
    entry["sha3_384"] = revision["snap-sha3-384"]
    entry["sha256"] = file_digest(target, "sha256")
    entry["assertionSha256"] = file_digest(assert_path, "sha256")


def _open_snap(snap: Snap, offset: int, timeout: float):
    return request(snap.url, headers={"Range": f"bytes={offset}-"} if offset else {}, timeout=timeout)


def _assertions(store: SnapStore, snap: Snap, path: Path) -> tuple[list[str], dict]:
    """account-key(s), account(s), snap-declaration, snap-revision, checked against the file and each other."""
    digest = sha3_384_b64(file_digest(path, "sha3_384"))
    revision_text = store.assertion("snap-revision", digest)
    revision = assertion_headers(revision_text)
    label = f"snap {snap.name}: snap-revision assertion"
    _require(label, revision, "snap-sha3-384", digest)
    _require(label, revision, "snap-size", path.stat().st_size)
    _require(label, revision, "snap-id", snap.snap_id)
    _require(label, revision, "snap-revision", snap.revision)
    declaration_text = store.assertion("snap-declaration", SERIES, snap.snap_id)
    declaration = assertion_headers(declaration_text)
    _require(f"snap {snap.name}: snap-declaration", declaration, "snap-name", snap.name)
    _require(f"snap {snap.name}: snap-declaration", declaration, "snap-id", snap.snap_id)
    accounts, keys = {}, {}
    pending_accounts = [declaration.get("publisher-id", "")]
    signed = [revision, declaration]
    while pending_accounts or any(h.get("sign-key-sha3-384") not in keys for h in signed):
        for headers in list(signed):
            key_id = headers.get("sign-key-sha3-384")
            if not key_id:
                raise BundleError(f"snap {snap.name}: a {headers.get('type')} assertion names no signing key")
            if key_id not in keys:
                text = store.assertion("account-key", key_id)
                key = assertion_headers(text)
                _require(f"snap {snap.name}: account-key", key, "public-key-sha3-384", key_id)
                keys[key_id] = text
                pending_accounts.append(key.get("account-id", ""))
        while pending_accounts:
            account_id = pending_accounts.pop()
            if account_id in TRUSTED_ACCOUNTS or account_id in accounts:
                continue
            text = store.assertion("account", account_id)
            account = assertion_headers(text)
            _require(f"snap {snap.name}: account", account, "account-id", account_id)
            accounts[account_id] = text
            signed.append(account)
    texts = [keys[k] for k in sorted(keys)] + [accounts[a] for a in sorted(accounts)]
    return texts + [declaration_text, revision_text], revision
