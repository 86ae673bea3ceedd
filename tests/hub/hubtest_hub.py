"""Start a real `jupyterhub` process for a test, configured through jhub_setup.configure like the chart does."""

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from urllib.parse import urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
HUB_DIR = os.path.abspath(os.path.join(HERE, "..", "..", "hub"))

CONFIG = """
import json, sys
sys.path.insert(0, {hub_dir!r}); sys.path.insert(0, {tests_dir!r})
c.JupyterHub.proxy_class = "hubtest_proxy.NullProxy"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.bind_url = "http://127.0.0.1:{public_port}"
c.JupyterHub.db_url = "sqlite:///{tmp}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{tmp}/cookie_secret"
c.JupyterHub.pid_file = "{tmp}/jupyterhub.pid"
c.JupyterHub.log_level = "DEBUG"
try:  # as the chart's jupyterhub_config.py does
    import pycurl  # noqa: F401
    from tornado.httpclient import AsyncHTTPClient
    AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")
except ImportError:
    pass
{before}
import jhub_setup
jhub_setup.configure(c, json.loads({cfg!r}))
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    def __init__(self, tmp_path, cfg, env=None, before=""):
        self.tmp, self.port = tmp_path, free_port()
        config = tmp_path / "jupyterhub_config.py"
        config.write_text(CONFIG.format(hub_dir=HUB_DIR, tests_dir=HERE, port=self.port, public_port=free_port(),
                                        tmp=tmp_path, cfg=json.dumps(cfg), before=before))
        self.log_path = tmp_path / "hub.log"
        self._log = open(self.log_path, "wb")
        jupyterhub = os.path.join(os.path.dirname(sys.executable), "jupyterhub")
        self.proc = subprocess.Popen([jupyterhub, "-f", str(config)], cwd=tmp_path, stdout=self._log,
                                     stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyterhub exited {self.proc.returncode}:\n{self.log()}")
            try:
                if self.request("GET", "/hub/api/")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyterhub did not answer in 60 s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def request(self, method, path, headers=None, body=None, timeout=30):
        """(status, headers as a list of pairs, body bytes); never follows redirects."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.getheaders(), resp.read()
        finally:
            conn.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def header(headers, name):
    return [v for k, v in headers if k.lower() == name.lower()]


def location_path(headers):
    return urlsplit(header(headers, "Location")[0])
