"""A local stand-in for the snap store's device API (the real one is not reachable from here), on
127.0.0.1, answering from the store-shaped fixtures of tests/offline/fixtures/snapstore/.

It serves `POST /v2/snaps/refresh` (download actions; refuses requests without the device headers),
the snap files (with `Range`), and `GET /v2/assertions/...`. Knobs make it misbehave the ways the bundle
must notice: `serve` (other bytes than the store metadata says), `cut_after` (drop the connection after that
many bytes, once), `assert_sha3` (a snap-revision assertion for other bytes). `requests` records
(method, path, headers) of every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

FIXTURES = Path(__file__).resolve().parents[1] / "offline" / "fixtures" / "snapstore"
STORE_KEY = "BWDEoaqyr25nF5SNCvEv2v7QnM9QsfCc0PBMYD_i2NGSQ32EF2d4D0hqUel3m8ul"
PUBLISHER = "canonical-test-publisher-0001"


@dataclass
class StoreSnap:
    name: str
    channel: str
    revision: int
    content: bytes
    snap_id: str = ""
    serve: Optional[bytes] = None
    cut_after: Optional[int] = None
    assert_sha3: Optional[str] = None

    def __post_init__(self):
        self.snap_id = self.snap_id or (self.name.upper() + "x" * 32)[:32]

    @property
    def sha3_hex(self) -> str:
        return hashlib.sha3_384(self.content).hexdigest()

    @property
    def sha3_b64(self) -> str:
        return self.assert_sha3 or base64.urlsafe_b64encode(bytes.fromhex(self.sha3_hex)).decode().rstrip("=")


def _fill(template: str, values: dict) -> str:
    return re.sub(r"@([A-Z0-9_]+)@", lambda m: str(values[m.group(1)]), template)


class SnapStoreServer:
    def __init__(self, snaps: list[StoreSnap]):
        self.snaps = {s.name: s for s in snaps}
        self.requests: list[tuple[str, str, dict]] = []
        self.actions: list[dict] = []  # the refresh actions asked for
        store = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                store.requests.append(("POST", self.path, dict(self.headers)))
                store.actions.extend(body.get("actions") or [])
                if self.path != "/v2/snaps/refresh":
                    return self._json(404, {"error-list": [{"code": "not-found", "message": "no such path"}]})
                if self.headers.get("Snap-Device-Series") != "16" or not self.headers.get("Snap-Device-Architecture"):
                    return self._json(400, {"error-list": [{"code": "api-error", "message": "missing device headers"}]})
                results = [store.result(action, self.headers["Snap-Device-Architecture"])
                           for action in body.get("actions") or []]
                self._json(200, {"error-list": [], "results": results})

            def do_GET(self):  # noqa: N802
                store.requests.append(("GET", self.path, dict(self.headers)))
                match = re.fullmatch(r"/api/v1/snaps/download/(\w+)_(\d+)\.snap", self.path)
                if match:
                    return store.send_snap(self, match.group(1))
                parts = self.path.strip("/").split("/")
                if parts[:2] == ["v2", "assertions"] and len(parts) >= 4:
                    text = store.assertion(parts[2], parts[3:])
                    if text is not None:
                        return self._send(200, text.encode(), "application/x.ubuntu.assertion")
                    return self._json(404, {"error-list": [{"code": "not-found", "message": "not found"}]})
                self._json(404, {"error-list": [{"code": "not-found", "message": "no such path"}]})

            def _json(self, status, body):
                self._send(status, json.dumps(body).encode(), "application/json")

            def _send(self, status, data, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def values(self, snap: StoreSnap, **extra) -> dict:
        return dict(NAME=snap.name, CHANNEL=snap.channel, REVISION=snap.revision, SNAP_ID=snap.snap_id,
                    SIZE=len(snap.content), SHA3_384_HEX=snap.sha3_hex, SHA3_384=snap.sha3_b64, BASE=self.url,
                    STORE_KEY=STORE_KEY, PUBLISHER_ID=PUBLISHER, **extra)

    def result(self, action: dict, architecture: str) -> dict:
        snap = self.snaps.get(action.get("name"))
        wanted = (snap is not None and architecture == "amd64" and action.get("action") == "download" and
                  (action.get("revision") == snap.revision if action.get("revision") else
                   action.get("channel") == snap.channel))
        template = "refresh-download.json" if wanted else "refresh-not-found.json"
        values = self.values(snap, INSTANCE_KEY=action.get("instance-key")) if wanted else \
            {"INSTANCE_KEY": action.get("instance-key"), "NAME": action.get("name")}
        return json.loads(_fill((FIXTURES / template).read_text(), values))["results"][0]

    def send_snap(self, handler, snap_id: str) -> None:
        snap = next((s for s in self.snaps.values() if s.snap_id == snap_id), None)
        if snap is None:
            return handler._json(404, {"error-list": []})
        data = snap.serve if snap.serve is not None else snap.content
        start = 0
        ranged = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range", ""))
        if ranged:
            start = int(ranged.group(1))
            if start >= len(data):
                return handler._send(416, b"", "text/plain")
        handler.send_response(206 if ranged else 200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(data) - start))
        if ranged:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if snap.cut_after is not None:
            cut, snap.cut_after = snap.cut_after, None
            handler.wfile.write(data[start:cut])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(data[start:])

    def assertion(self, kind: str, keys: list[str]) -> Optional[str]:
        for snap in self.snaps.values():
            values = self.values(snap)
            found = {("snap-revision", snap.sha3_b64): "snap-revision.assert",
                     ("snap-declaration", f"16/{snap.snap_id}"): "snap-declaration.assert",
                     ("account", PUBLISHER): "account.assert",
                     ("account-key", STORE_KEY): "account-key.assert"}.get((kind, "/".join(keys)))
            if found:
                return _fill((FIXTURES / found).read_text(), values)
        return None

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
