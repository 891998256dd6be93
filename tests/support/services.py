"""Helpers shared by tests that run real services on loopback."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str, package: str) -> str:
    """Path of a service binary; under CI=true a missing one fails the run instead of skipping."""
    path = shutil.which(name)
    if path is None:
        for d in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
            cand = Path(d) / name
            if cand.is_file() and os.access(cand, os.X_OK):
                path = str(cand)
                break
    if path is None:
        msg = f"{name} not installed (Debian package {package!r})"
        if IN_CI:
            pytest.fail(msg + ": CI must install it")
        pytest.skip(msg)
    return path


def wait_until(
    cond: Callable[[], object], timeout: float = 30.0, what: str = "condition"
) -> object:
    """Poll a condition with a generous deadline: tests never sleep a fixed time."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        result = cond()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
