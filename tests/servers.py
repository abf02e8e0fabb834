"""What every real-server fixture shares: the CI rule for a missing server and waiting."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import NoReturn

import pytest


def missing_server(message: str) -> NoReturn:
    """A real server a test needs is not installed: skip locally, fail with CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def wait_until(condition: Callable[[], object], timeout_s: float, what: str,
               interval_s: float = 0.02) -> None:
    """Poll condition() until it is true; fail naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)
