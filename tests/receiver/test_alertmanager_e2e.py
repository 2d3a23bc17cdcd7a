"""A real Alertmanager (Debian `prometheus-alertmanager`) posting to a real receiver."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from receiver.appkeys import STORE
from tests.receiver._alertmanager_helpers import (
    alertmanager,
    now_rfc3339,
    post_alerts,
    receiver_port,
)
from tests.receiver._helpers import BASE_CONFIG, Running, Script, running, wait_for

pytestmark = pytest.mark.e2e
__all__ = ["alertmanager", "receiver_port"]  # fixtures, re-exported so pytest finds them


async def _incident(rx: Running, state: str) -> dict[str, Any] | None:
    found = [
        i.to_json() for i in await rx.app[STORE].incidents(state, {"alertname": "E2EDiskFull"}, 10)
    ]
    return found[0] if found else None


async def test_alertmanager_to_receiver(
    script: Script, alertmanager: str, receiver_port: int, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("s3cr3t")
    text = BASE_CONFIG + (
        f"webhook: {{auth: bearer, token_file: {tmp_path / 'token'}}}\n"
        f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
    )
    started = now_rfc3339()
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
        await post_alerts(rx.http, alertmanager, alerts)
        opened = await wait_for(lambda: _incident(rx, "triggered"), what="incident opened")
        detail = (await rx.app[STORE].incident(opened["id"])).to_json()
        assert detail is not None
        assert sorted(a["labels"]["disk"] for a in detail["alerts"]) == ["sda", "sdb"]
        assert detail["alerts"][0]["labels"]["place"] == "Zürich ✓"
        assert detail["common_labels"]["severity"] == "critical"
        await wait_for(lambda: script.sent.get("pager"), what="page sent")
        assert script.sent["pager"][0].alerts[0].annotations["summary"].startswith("disk sd")
        # Resolve both: the same alerts with endsAt now.
        ended = [{**a, "endsAt": now_rfc3339()} for a in alerts]
        await post_alerts(rx.http, alertmanager, ended)
        await wait_for(lambda: _incident(rx, "resolved"), what="incident resolved")
        await wait_for(lambda: len(script.sent.get("pager", [])) == 2, what="resolved message")
        assert [n.kind for n in script.sent["pager"]] == ["firing", "resolved"]
        await asyncio.sleep(0)
