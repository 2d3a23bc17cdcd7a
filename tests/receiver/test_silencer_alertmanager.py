"""Silences on acknowledgement against a real Alertmanager (Debian `prometheus-alertmanager`).

The whole loop: Alertmanager posts the group, the incident is acknowledged, the silencer puts
one silence per firing alert into Alertmanager, converges after a duplicate from another
replica, resolves the incident when the silenced alerts end (Alertmanager never sends that
resolution: it is muted), and expires the silences once the incident is over.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from maintwatch.httpauth import basic_auth
from receiver.appkeys import ACTIONS, SILENCER, STORE
from receiver.silences.alertmanager import AlertmanagerAPI, AlertmanagerError
from receiver.silences.plan import AlertmanagerConfig
from receiver.silences.silencer import Silencer
from tests.conftest import free_port
from tests.receiver._alertmanager_helpers import (
    alertmanager,
    now_rfc3339,
    post_alerts,
    receiver_port,
)
from tests.receiver._channel_helpers import recording_server
from tests.receiver._helpers import BASE_CONFIG, Running, Script, running, wait_for

pytestmark = pytest.mark.e2e
__all__ = ["alertmanager", "receiver_port"]  # fixtures, re-exported so pytest finds them


def config_text(tmp_path: Path, am: str, unique: str) -> str:
    (tmp_path / "token").write_text("s3cr3t")
    return BASE_CONFIG + (
        f"webhook: {{auth: bearer, token_file: {tmp_path / 'token'}}}\n"
        f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
        "external_url: https://rx.example\n"
        f"alertmanager: {{url: '{am}', interval: 1h, resolve_after_missing: 0s,\n"
        f"               created_by: 'mw-{unique}'}}\n"
    )


def disk_alerts(unique: str) -> list[dict[str, Any]]:
    return [
        {
            "labels": {"alertname": f"Disk{unique}", "severity": "critical", "disk": d},
            "annotations": {"summary": f"disk {d} full"},
            "startsAt": now_rfc3339(),
        }
        for d in ("sda", "sdb")
    ]


async def am_get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def ours(rx: Running, am: str, unique: str, state: str = "active") -> list[dict[str, Any]]:
    silences = await am_get(rx.http, f"{am}/api/v2/silences")
    return [
        s for s in silences if s["createdBy"] == f"mw-{unique}" and s["status"]["state"] == state
    ]


def silencer(rx: Running) -> Silencer:
    found = rx.app[SILENCER]
    assert found is not None
    return found


async def opened(rx: Running, unique: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        rows = [
            i.to_json()
            for i in await rx.app[STORE].incidents("triggered", {"alertname": f"Disk{unique}"}, 5)
        ]
        return rows[0] if rows else None

    row: dict[str, Any] = await wait_for(find, what="incident opened from Alertmanager")
    return row


async def test_ack_silences_each_alert_and_the_silences_follow_the_incident(
    script: Script, alertmanager: str, receiver_port: int, tmp_path: Path, unique: str
) -> None:
    async with running(config_text(tmp_path, alertmanager, unique), port=receiver_port) as rx:
        alerts = disk_alerts(unique)
        await post_alerts(rx.http, alertmanager, alerts)
        incident_id = int((await opened(rx, unique))["id"])
        assert (await silencer(rx).run_once()).created == 0  # nothing acknowledged yet

        await rx.app[ACTIONS].ack(incident_id, "alice", "api")
        first = await silencer(rx).run_once()
        assert first.created == 2
        live = await ours(rx, alertmanager, unique)
        assert sorted({m["name"]: m["value"] for m in s["matchers"]}["disk"] for s in live) == [
            "sda",
            "sdb",
        ]
        assert all(s["comment"].startswith(f"maintwatch incident #{incident_id} ") for s in live)
        assert all(f"https://rx.example/incidents/{incident_id}" in s["comment"] for s in live)
        muted = await am_get(
            rx.http, f'{alertmanager}/api/v2/alerts?filter=alertname="Disk{unique}"'
        )
        assert {a["status"]["state"] for a in muted} == {"suppressed"}
        assert {tuple(a["status"]["silencedBy"]) for a in muted} == {(s["id"],) for s in live}

        again = await silencer(rx).run_once()  # converged: a second pass changes nothing
        assert (again.created, again.renewed, again.expired) == (0, 0, 0)

        # Another replica raced and created the same silence: one of the two is expired.
        body = {key: live[0][key] for key in ("matchers", "startsAt", "endsAt", "createdBy")}
        async with rx.http.post(
            f"{alertmanager}/api/v2/silences", json={**body, "comment": live[0]["comment"]}
        ) as response:
            assert response.status == 200
        assert len(await ours(rx, alertmanager, unique)) == 3
        assert (await silencer(rx).run_once()).expired == 1
        assert len(await ours(rx, alertmanager, unique)) == 2

        # The alerts end while silenced: Alertmanager mutes that resolution, the silencer sees
        # the alerts gone and resolves the incident, then expires its silences.
        await post_alerts(rx.http, alertmanager, [{**a, "endsAt": now_rfc3339()} for a in alerts])
        gone = await silencer(rx).run_once()
        assert gone.resolved == [incident_id]
        detail = (await rx.app[STORE].incident(incident_id)).to_json()
        assert detail is not None
        assert (detail["state"], detail["resolved_by"]) == ("resolved", "alertmanager")
        assert (await silencer(rx).run_once()).expired == 2
        assert await ours(rx, alertmanager, unique) == []
        assert len(await ours(rx, alertmanager, unique, "expired")) >= 2


async def test_unack_expires_the_silences_so_alertmanager_notifies_again(
    script: Script, alertmanager: str, receiver_port: int, tmp_path: Path, unique: str
) -> None:
    async with running(config_text(tmp_path, alertmanager, unique), port=receiver_port) as rx:
        await post_alerts(rx.http, alertmanager, disk_alerts(unique))
        incident_id = int((await opened(rx, unique))["id"])
        await rx.app[ACTIONS].ack(incident_id, "alice", "api")
        assert (await silencer(rx).run_once()).created == 2
        await rx.app[ACTIONS].unack(incident_id, "alice", "api")
        assert (await silencer(rx).run_once()).expired == 2
        assert await ours(rx, alertmanager, unique) == []
        detail = (await rx.app[STORE].incident(incident_id)).to_json()
        assert detail is not None
        assert detail["state"] == "triggered"  # still firing: only the silences ended


async def test_alertmanager_down_is_reported_once_and_retried(
    script: Script, tmp_path: Path, unique: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with running(config_text(tmp_path, dead, unique)) as rx:
        incident = await rx.post(
            {
                "version": "4",
                "groupKey": '{}:{alertname="X"}',
                "status": "firing",
                "receiver": "hook",
                "groupLabels": {"alertname": "X"},
                "commonLabels": {"alertname": "X"},
                "commonAnnotations": {},
                "externalURL": "http://am",
                "truncatedAlerts": 0,
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "X"},
                        "annotations": {},
                        "startsAt": now_rfc3339(),
                        "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "",
                        "fingerprint": "0123456789abcdef",
                    }
                ],
            },
            token="s3cr3t",
        )
        assert incident.status == 200
        rows = [i.to_json() for i in await rx.app[STORE].incidents("triggered", {}, 5)]
        await rx.app[ACTIONS].ack(int(rows[0]["id"]), "alice", "api")
        with pytest.raises(AlertmanagerError, match=r"GET /silences: .*Connect"):
            await silencer(rx).run_once()
        with capture_logs() as logs:
            task = asyncio.create_task(silencer(rx).run())
            for _ in range(3):
                silencer(rx).wake()
                await asyncio.sleep(0.2)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            task_logs = [e for e in logs if e["event"].startswith("silencer_")]
        assert [e["event"] for e in task_logs] == ["silencer_failed"]
        assert silencer(rx).metrics.errors._value.get() >= 3


async def test_basic_auth_is_sent_and_never_repeated_in_an_error(tmp_path: Path) -> None:
    async def echo(request: web.Request) -> web.Response:  # a proxy page repeating the request
        return web.Response(status=502, text=f"bad gateway: {dict(request.headers)}")

    (tmp_path / "pw").write_text("am-secret-pw\n")
    async with recording_server(echo) as proxy, aiohttp.ClientSession() as http:
        config = AlertmanagerConfig.model_validate(
            {"url": proxy.url, "username": "rx", "password_file": str(tmp_path / "pw")}
        )
        with pytest.raises(AlertmanagerError) as caught:
            await AlertmanagerAPI(http, config).silences()
    sent = proxy.requests[0].headers["Authorization"]
    assert sent == basic_auth("rx", "am-secret-pw")
    reason = str(caught.value)
    assert reason.startswith("GET /silences: HTTP 502 bad gateway")
    assert "am-secret-pw" not in reason
    assert sent.split(" ", 1)[1] not in reason
    assert "<redacted>" in reason


def webhook_alert(name: str, fingerprint: str, **labels: str) -> dict[str, Any]:
    """Return a webhook body of one firing alert, as any webhook sender could post it."""
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "status": "firing",
        "receiver": "hook",
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name},
        "commonAnnotations": {},
        "externalURL": "http://am",
        "truncatedAlerts": 0,
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, **labels},
                "annotations": {},
                "startsAt": now_rfc3339(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "",
                "fingerprint": fingerprint,
            }
        ],
    }


async def test_a_silence_alertmanager_rejects_fails_alone(
    script: Script, alertmanager: str, receiver_port: int, tmp_path: Path, unique: str
) -> None:
    # Alertmanager 0.25 refuses the label name `service.name` in a matcher (HTTP 400): that
    # incident's silence fails on every pass, and must not stop the others being created,
    # renewed or expired, nor make the gauge lie. (The alerts were posted to the receiver only:
    # a long grace keeps their absence from Alertmanager from resolving the incidents.)
    text = config_text(tmp_path, alertmanager, unique)
    text = text.replace("resolve_after_missing: 0s", "resolve_after_missing: 1h")
    async with running(text, port=receiver_port) as rx:
        await post_alerts(rx.http, alertmanager, [])  # waits until Alertmanager is ready
        bad = await rx.post(
            webhook_alert(f"Bad{unique}", "0bad", **{"service.name": "x"}), token="s3cr3t"
        )
        good = await rx.post(webhook_alert(f"Good{unique}", "0900d", disk="sda"), token="s3cr3t")
        assert (bad.status, good.status) == (200, 200)
        rows = [i.to_json() for i in await rx.app[STORE].incidents("triggered", {}, 5)]
        ids = {r["common_labels"]["alertname"]: int(r["id"]) for r in rows}
        for incident_id in ids.values():
            await rx.app[ACTIONS].ack(incident_id, "alice", "api")

        with capture_logs() as logs:
            first = await silencer(rx).run_once()
            await silencer(rx).run_once()  # rejected again: not logged again
        assert first.created == 1
        (live,) = await ours(rx, alertmanager, unique)
        assert {m["name"]: m["value"] for m in live["matchers"]}["disk"] == "sda"
        rejected = [e for e in logs if e["event"] == "silence_rejected"]
        assert len(rejected) == 1
        assert "HTTP 400" in rejected[0]["reason"]
        gauge = silencer(rx).metrics.silences
        assert gauge._value.get() == 1  # the silence that exists, not the two wanted

        # The good incident is unacknowledged: its silence is expired although the other
        # incident's silence is still refused on the same pass.
        await rx.app[ACTIONS].unack(ids[f"Good{unique}"], "alice", "api")
        assert (await silencer(rx).run_once()).expired == 1
        assert await ours(rx, alertmanager, unique) == []
        assert gauge._value.get() == 0
