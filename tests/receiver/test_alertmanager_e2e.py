"""A real Alertmanager (Debian `prometheus-alertmanager`) posting to a real receiver."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from receiver.appkeys import STORE
from tests.conftest import free_port, require_tool
from tests.receiver._helpers import BASE_CONFIG, Running, Script, register_script, running, wait_for

pytestmark = pytest.mark.e2e

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


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    """Register the scripted test channels."""
    return register_script(monkeypatch)


@pytest.fixture
def receiver_port() -> int:
    """Return the port the receiver will listen on."""
    return free_port()


@pytest.fixture
def alertmanager(tmp_path: Path, receiver_port: int) -> Iterator[str]:
    """Start Alertmanager on a free port routing to the receiver; yield its URL."""
    binary = require_tool("prometheus-alertmanager")
    config = tmp_path / "am.yml"
    config.write_text(AM_CONFIG.format(url=f"http://127.0.0.1:{receiver_port}"))
    port = free_port()
    log = (tmp_path / "am.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
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


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


async def _post_alerts(http: aiohttp.ClientSession, am: str, alerts: list[dict[str, Any]]) -> None:
    async def ready() -> bool:
        try:
            async with http.get(f"{am}/-/ready") as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False

    await wait_for(ready, what="alertmanager ready")
    async with http.post(f"{am}/api/v2/alerts", json=alerts) as response:
        assert response.status == 200, await response.text()


async def _incident(rx: Running, state: str) -> dict[str, Any] | None:
    found = await rx.app[STORE].incidents(state, {"alertname": "E2EDiskFull"}, 10)
    return found[0] if found else None


async def test_alertmanager_to_receiver(
    script: Script, alertmanager: str, receiver_port: int, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("s3cr3t")
    text = BASE_CONFIG + (
        f"webhook: {{auth: bearer, token_file: {tmp_path / 'token'}}}\n"
        f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
    )
    started = _now()
    alerts = [
        {
            "labels": {
                "alertname": "E2EDiskFull",
                "severity": "critical",
                "disk": d,
                "place": "Zürich ✓",
            },
            "annotations": {"summary": f"disk {d} full"},
            "startsAt": started,
            "generatorURL": "http://prom/graph",
        }
        for d in ("sda", "sdb")
    ]
    async with running(text, run_worker=True, port=receiver_port) as rx:
        await _post_alerts(rx.http, alertmanager, alerts)
        opened = await wait_for(lambda: _incident(rx, "triggered"), what="incident opened")
        detail = await rx.app[STORE].incident(opened["id"])
        assert detail is not None
        assert sorted(a["labels"]["disk"] for a in detail["alerts"]) == ["sda", "sdb"]
        assert detail["alerts"][0]["labels"]["place"] == "Zürich ✓"
        assert detail["common_labels"]["severity"] == "critical"
        await wait_for(lambda: script.sent.get("pager"), what="page sent")
        assert script.sent["pager"][0].alerts[0].annotations["summary"].startswith("disk sd")
        # Resolve both: the same alerts with endsAt now.
        ended = [{**a, "endsAt": _now()} for a in alerts]
        await _post_alerts(rx.http, alertmanager, ended)
        await wait_for(lambda: _incident(rx, "resolved"), what="incident resolved")
        await wait_for(lambda: len(script.sent.get("pager", [])) == 2, what="resolved message")
        assert [n.kind for n in script.sent["pager"]] == ["firing", "resolved"]
        await asyncio.sleep(0)
