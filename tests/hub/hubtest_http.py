"""A small real HTTP server for tests: routes answer JSON, may sleep first, and every request is recorded."""

import json
import os
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class Stream:
    """A streamed answer body: each item of `items` (an iterable of dicts) goes out as one JSON line as soon as it
    is produced, and the connection closes when it ends (as a Kubernetes watch does)."""

    def __init__(self, items):
        self.items = items


class RecordingServer:
    def __init__(self, tls=None):
        """`tls`: a certificate (hubtest_tls.Issued) to serve HTTPS with, or None for plain HTTP."""
        self.routes = {}
        self.requests = []
        self._httpd = None
        self._tls = tls

    def route(self, method, path, answer):
        """answer(request_dict) -> (status, json_body) or (status, json_body, delay_seconds)."""
        self.routes[(method, path)] = answer

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    def start(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = {"method": self.command, "path": parts.path, "query": parts.query,
                           "headers": {k.lower(): v for k, v in self.headers.items()},
                           "body": self.rfile.read(length).decode() if length else ""}
                server.requests.append(request)
                answer = server.routes.get((self.command, parts.path))
                if answer is None:
                    prefix = next((p for (m, p) in server.routes if m == self.command and p.endswith("*")
                                   and parts.path.startswith(p[:-1])), None)
                    answer = server.routes.get((self.command, prefix)) if prefix else None
                status, body, *delay = answer(request) if answer else (404, {"error": "no route"})
                if delay:
                    time.sleep(delay[0])
                if isinstance(body, Stream):
                    self._stream(status, body)
                    return
                data = b"" if status == 204 else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    if status != 204:
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _stream(self, status, body):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    for item in body.items:
                        self.wfile.write(json.dumps(item).encode() + b"\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if self._tls is not None:
            folder = tempfile.mkdtemp(prefix="jhub-https-")
            cert, key = os.path.join(folder, "server.crt"), os.path.join(folder, "server.key")
            with open(cert, "w") as f:
                f.write(self._tls.certificate)
            with open(key, "w") as f:
                f.write(self._tls.key)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self):
        self._httpd.shutdown()
        self._httpd.server_close()
