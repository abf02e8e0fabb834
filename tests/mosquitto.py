"""A real mosquitto broker for tests: a free port on 127.0.0.1, its own temp config.

    broker = start_mosquitto()      # skips the test (fails with CI=true) without mosquitto
    ...  broker.host, broker.port  ...
    broker.restart()                # same port, all sessions gone (broker-outage tests)
    broker.stop()

Readiness is a successful TCP connect, polled with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import missing_server

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def mosquitto_binary() -> str | None:
    """The mosquitto executable: on PATH or where the Debian package puts it."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((path for path in _CANDIDATES if os.access(path, os.X_OK)), None)


def mosquitto_available() -> bool:
    return mosquitto_binary() is not None


def require_mosquitto() -> str:
    """The binary; without it skip the test locally, fail it when CI == "true"."""
    binary = mosquitto_binary()
    if binary is None:
        message = "mosquitto is not installed (Debian package mosquitto; `make test` installs it)"
        missing_server(message)
    return binary


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float,
                  process: subprocess.Popen[bytes] | None = None) -> None:
    """Return once a TCP connect succeeds; raise if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"mosquitto exited with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s} s"
                                   ) from None
            time.sleep(0.02)  # poll interval, bounded by the deadline above


@dataclass
class Mosquitto:
    binary: str
    port: int
    directory: Path
    host: str = HOST
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def config_file(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        return self.directory / "mosquitto.log"

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def _launch(self, timeout_s: float) -> None:
        self.config_file.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
        )
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_file)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            wait_for_port(self.host, self.port, timeout_s, self.process)
        except (RuntimeError, TimeoutError) as err:
            self._terminate()
            raise RuntimeError(f"mosquitto did not start on port {self.port}: {err}\n"
                               f"{self.log()}") from err
        logger.info("mosquitto listening on %s:%d", self.host, self.port)

    def _terminate(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self, timeout_s: float = 10.0) -> None:
        """Stop and start again on the same port (clients see the broker go away)."""
        self._terminate()
        self._launch(timeout_s)

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_mosquitto(timeout_s: float = 10.0, attempts: int = 3) -> Mosquitto:
    """Start mosquitto on a free port; a port taken in between is retried with another."""
    binary = require_mosquitto()
    last: Exception | None = None
    for _ in range(attempts):
        directory = Path(tempfile.mkdtemp(prefix="lw-mosquitto-"))
        broker = Mosquitto(binary=binary, port=free_port(), directory=directory)
        try:
            broker._launch(timeout_s)
        except RuntimeError as err:
            broker.stop()
            last = err
            continue
        return broker
    raise RuntimeError(f"could not start mosquitto in {attempts} attempts: {last}")
