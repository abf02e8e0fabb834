"""A real ``influxd`` (Debian package ``influxdb``, 1.x) for tests: free ports, own temp dirs.

`Influxd` starts the server with a generated config, waits until ``/ping`` answers, and can
kill it (SIGKILL) and start it again on the same data directory and port. The ``influxd``
fixture registered in tests/conftest.py shares one server per test session; tests isolate
themselves with a database of their own (`fresh_database`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers import missing_server, wait_until

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def influxd_binary() -> str | None:
    """Path of the influxd binary, or None when the package is not installed."""
    return shutil.which("influxd") or (
        "/usr/bin/influxd" if os.access("/usr/bin/influxd", os.X_OK) else None)


def require_influxd() -> str:
    """The influxd binary; skip the test without it, or fail it when CI=true."""
    binary = influxd_binary()
    if binary is None:
        message = ("influxd not found: install the Debian package 'influxdb' "
                   "(make test does so when run as root with apt)")
        missing_server(message)
    return binary


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])




@dataclass
class Influxd:
    """One influxd process with its own config, data directories and ports."""

    binary: str
    root: Path
    auth: bool = False
    port: int = 0
    rpc_port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / "influxd.log"

    def write_config(self) -> Path:
        path = self.root / "influxd.conf"
        # Everything but HTTP switched off: no _internal monitor writes, no CQs, no
        # subscriptions, no usage reporting, nothing on the default ports.
        path.write_text(f"""\
reporting-disabled = true
bind-address = "127.0.0.1:{self.rpc_port}"

[meta]
  dir = "{self.root / 'meta'}"
  logging-enabled = false

[data]
  dir = "{self.root / 'data'}"
  wal-dir = "{self.root / 'wal'}"
  query-log-enabled = false

[monitor]
  store-enabled = false

[retention]
  enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{self.port}"
  auth-enabled = {'true' if self.auth else 'false'}
  log-enabled = false
  pprof-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
""", encoding="utf-8")
        return path

    def start(self) -> None:
        """Start (or restart on the same ports and data) and wait until /ping answers."""
        if not self.port:
            self.port, self.rpc_port = free_port(), free_port()
        config = self.write_config()
        log = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen([self.binary, "run", "-config", str(config)],
                                         stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        try:
            wait_until(self._ready, START_TIMEOUT_S, f"influxd on port {self.port}")
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"influxd did not start; log:\n{self.log_tail()}") from None

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"influxd exited with {self.proc.returncode}; log:\n"
                               f"{self.log_tail()}")
        return self.ping() is not None

    def ping(self) -> str | None:
        """The server's version from /ping, or None when it does not answer."""
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                return response.headers.get("X-Influxdb-Version")
        except (OSError, urllib.error.URLError):
            return None

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would; waits until the process is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def query(self, q: str, db: str | None = None, epoch: str = "s",
              auth: tuple[str, str] | None = None) -> dict[str, Any]:
        """Run InfluxQL directly over HTTP (test setup and independent checks)."""
        import base64
        import json

        params = {"q": q, "epoch": epoch}
        if db:
            params["db"] = db
        request = urllib.request.Request(f"{self.url}/query",
                                         data=urllib.parse.urlencode(params).encode())
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            data: dict[str, Any] = json.loads(response.read())
        for result in data.get("results", ()):
            if "error" in result:
                raise RuntimeError(f"InfluxQL error: {result['error']} ({q})")
        return data

    def count(self, db: str, measurement: str, field_name: str) -> int:
        """COUNT(field) over all time, straight from the server."""
        data = self.query(f'SELECT COUNT("{field_name}") FROM "{measurement}"', db=db)
        series = data["results"][0].get("series")
        return int(series[0]["values"][0][1]) if series else 0


def start_influxd(root: Path | None = None, auth: bool = False) -> Influxd:
    """Start an influxd in `root` (a new temp directory if None); the caller stops it."""
    binary = require_influxd()
    server = Influxd(binary, Path(root or tempfile.mkdtemp(prefix="lw-influxd-")), auth=auth)
    server.root.mkdir(parents=True, exist_ok=True)
    server.start()
    return server


@contextlib.contextmanager
def running_influxd(root: Path | None = None, auth: bool = False) -> Iterator[Influxd]:
    """An influxd for the duration of a with block, stopped and its directory removed after."""
    server = start_influxd(root, auth=auth)
    try:
        yield server
    finally:
        server.stop()
        if root is None:
            shutil.rmtree(server.root, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(server: Influxd, prefix: str = "lw") -> Iterator[str]:
    """A new, empty database on the server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    server.query(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            server.query(f'DROP DATABASE "{name}"')


@pytest.fixture(scope="session")
def influxd() -> Iterator[Influxd]:
    """One real influxd for the test session (skipped without influxd; failed with CI=true)."""
    with running_influxd() as server:
        yield server
