"""Fixtures shared by every test: free ports, external tools, per-run unique names, and
logging undone after each test."""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator

import pytest
import structlog


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_ports(count: int) -> list[int]:
    """Return `count` distinct free TCP ports: all held open while they are chosen, since
    ports asked for one after another may repeat once each is closed."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def require_tool(name: str) -> str:
    """Return the path of an external tool; fail (never skip) in CI when it is missing."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run must install it")
        pytest.skip(f"{name} is not installed (apt-get install it to run this test)")
    return path


@pytest.fixture
def unique() -> str:
    """Return a short name unique to this test run, for databases, keys and prefixes."""
    return "mw" + uuid.uuid4().hex[:10]


@pytest.fixture
def promtool() -> str:
    """Return promtool's path (Debian package `prometheus`)."""
    return require_tool("promtool")


@pytest.fixture
def port() -> int:
    """Return a free TCP port."""
    return free_port()


@pytest.fixture(autouse=True)
def _logging_undone() -> Iterator[None]:
    """Undo a CLI's logging setup: `main()` configures structlog for the whole process (its
    level, and the stderr pytest captured and closes), which later tests would inherit."""
    yield
    structlog.reset_defaults()
