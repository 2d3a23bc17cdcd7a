"""A real Alertmanager (Debian `prometheus-alertmanager`) for receiver tests."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import free_port, require_tool
from tests.receiver._helpers import answers_200, wait_for

AM_CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}/webhooks/alertmanager
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: s3cr3t}}
"""


@contextlib.contextmanager
def alertmanager_process(directory: Path, receiver_url: str) -> Iterator[str]:
    """Run Alertmanager on a free port, routing every alert to the receiver; yield its URL."""
    binary = require_tool("prometheus-alertmanager")
    config = directory / "am.yml"
    config.write_text(AM_CONFIG.format(url=receiver_url))
    port = free_port()
    log = (directory / "am.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={directory / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def now_rfc3339() -> str:
    """Return the current time as Alertmanager wants it."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def post_alerts(http: aiohttp.ClientSession, am: str, alerts: list[dict[str, Any]]) -> None:
    """Wait until Alertmanager is ready, then post alerts to its API."""
    await wait_for(answers_200(http, f"{am}/-/ready"), what="alertmanager ready")
    async with http.post(f"{am}/api/v2/alerts", json=alerts) as response:
        assert response.status == 200, await response.text()


@pytest.fixture
def receiver_port() -> int:
    """Return the port the receiver will listen on (Alertmanager is configured with it)."""
    return free_port()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver_port: int) -> Iterator[str]:
    """Start Alertmanager routing to the receiver on `receiver_port`; yield its URL."""
    with alertmanager_process(tmp_path, f"http://127.0.0.1:{receiver_port}") as url:
        yield url
