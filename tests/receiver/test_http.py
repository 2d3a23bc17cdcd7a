"""The HTTP surface: webhook auth and error answers, metrics, health, readiness, the API."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from receiver.appkeys import METRICS, STORE
from tests.receiver._helpers import (
    BASE_CONFIG,
    Running,
    Script,
    alert,
    fixture_bytes,
    payload,
    running,
)


def config(tmp_path: Path, auth: str = "bearer") -> str:
    """Return a config with webhook auth, an API token and a small body limit."""
    (tmp_path / "token").write_text("s3cr3t\n")
    (tmp_path / "api").write_text("apitoken\n")
    (tmp_path / "pw").write_text("hunter2\n")
    hook = (
        f"webhook: {{auth: bearer, token_file: {tmp_path / 'token'}, max_body_bytes: 200000}}\n"
        if auth == "bearer"
        else f"webhook: {{auth: basic, username: am, password_file: {tmp_path / 'pw'}}}\n"
    )
    return (
        BASE_CONFIG
        + hook
        + f"api: {{token_file: {tmp_path / 'api'}}}\n"
        + f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
    )


def sample(rx: Running, name: str, **labels: str) -> float | None:
    """Return a sample of the app's registry."""
    return rx.app[METRICS].registry.get_sample_value(name, labels)


async def test_bearer_auth_and_intake(script: Script, tmp_path: Path) -> None:
    async with running(config(tmp_path)) as rx:
        assert (await rx.post(fixture_bytes("firing-single.json"))).status == 401
        assert (await rx.post(fixture_bytes("firing-single.json"), token="wrong")).status == 401
        ok = await rx.post(fixture_bytes("firing-single.json"), token="s3cr3t")
        assert ok.status == 200
        assert (await rx.post(fixture_bytes("firing-single.json"), token="s3cr3t")).status == 200
        webhooks = "maintwatch_receiver_webhooks_total"
        assert sample(rx, webhooks, outcome="processed") == 1
        assert sample(rx, webhooks, outcome="unchanged") == 1
        assert sample(rx, webhooks, outcome="unauthorized") == 2
        assert sample(rx, "maintwatch_receiver_alerts_received_total", status="firing") == 2


async def test_intake_logs_each_webhook_at_debug_and_state_changes_at_info(
    script: Script, tmp_path: Path
) -> None:
    async with running(config(tmp_path)) as rx:
        with capture_logs() as logs:
            for _ in range(2):
                ok = await rx.post(fixture_bytes("firing-single.json"), token="s3cr3t")
                assert ok.status == 200
    intake = [
        (e["event"], e["log_level"])
        for e in logs
        if e["event"] in ("webhook_received", "incident_opened")
    ]
    assert intake == [
        ("webhook_received", "debug"),
        ("incident_opened", "info"),
        ("webhook_received", "debug"),
    ]
    changes = "maintwatch_receiver_incident_changes_total"
    assert sample(rx, changes, action="open") == 1
    assert sample(rx, changes, action="none") == 1
    assert sample(rx, "maintwatch_receiver_webhooks_total", outcome="aborted") == 0  # bound


async def test_basic_auth(script: Script, tmp_path: Path) -> None:
    async with running(config(tmp_path, "basic")) as rx:
        good = base64.b64encode(b"am:hunter2").decode()
        bad = base64.b64encode(b"am:nope").decode()
        data = fixture_bytes("firing-group.json")
        assert (await rx.post(data, Authorization=f"Basic {bad}")).status == 401
        assert (await rx.post(data, Authorization="Basic !!!")).status == 401
        assert (await rx.post(data, Authorization=f"Basic {good}")).status == 200


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"{not json", "malformed JSON"),
        (
            json.dumps({**payload(alert("a")), "version": "3"}).encode(),
            "unsupported webhook version",
        ),
        (
            json.dumps({k: v for k, v in payload(alert("a")).items() if k != "groupKey"}).encode(),
            "groupKey: Field required",
        ),
        (json.dumps(payload({**alert("a"), "status": "weird"})).encode(), "alerts[0].status"),
    ],
)
async def test_bad_payloads_get_400_with_reason(
    script: Script, tmp_path: Path, data: bytes, reason: str
) -> None:
    async with (
        running(config(tmp_path)) as rx,
        rx.http.post(
            f"{rx.url}/webhooks/alertmanager", data=data, headers={"Authorization": "Bearer s3cr3t"}
        ) as response,
    ):
        assert response.status == 400
        assert reason in await response.text()


async def test_unknown_fields_accepted_and_body_limit(script: Script, tmp_path: Path) -> None:
    async with running(config(tmp_path)) as rx:
        extra = {**payload(alert("a")), "notification_reason": "new", "future": {"x": 1}}
        assert (await rx.post(extra, token="s3cr3t")).status == 200
        huge = payload(*(alert(f"f{i}") for i in range(2000)))
        assert (await rx.post(huge, token="s3cr3t")).status == 413


async def test_store_down_answers_503_and_not_ready(script: Script, tmp_path: Path) -> None:
    async with running(config(tmp_path)) as rx:
        async with rx.http.get(f"{rx.url}/-/ready") as response:
            assert response.status == 200
        await rx.app[STORE].close()
        assert (await rx.post(fixture_bytes("firing-single.json"), token="s3cr3t")).status == 503
        async with rx.http.get(f"{rx.url}/-/ready") as response:
            assert response.status == 503
        async with rx.http.get(f"{rx.url}/-/healthy") as response:
            assert response.status == 200


async def test_api_lists_shows_and_resolves(script: Script, tmp_path: Path) -> None:
    auth = {"Authorization": "Bearer apitoken"}
    async with running(config(tmp_path)) as rx:
        await rx.post(fixture_bytes("firing-single.json"), token="s3cr3t")
        await rx.post(fixture_bytes("firing-group.json"), token="s3cr3t")
        async with rx.http.get(f"{rx.url}/api/v1/incidents") as response:
            assert response.status == 401
        url = f"{rx.url}/api/v1/incidents?state=triggered&label=alertname=BackupTooOld"
        async with rx.http.get(url, headers=auth) as response:
            (listed,) = (await response.json())["incidents"]
        assert listed["common_labels"]["service"] == "database"
        async with rx.http.post(
            f"{rx.url}/api/v1/incidents/{listed['id']}/resolve", headers=auth
        ) as response:
            resolved = await response.json()
        assert resolved["state"] == "resolved"
        assert resolved["resolved_by"] == "api"
        assert [n["kind"] for n in resolved["notifications"]] == ["firing", "resolved"]
        async with rx.http.get(f"{rx.url}/api/v1/incidents/9999", headers=auth) as response:
            assert response.status == 404
        async with rx.http.get(f"{rx.url}/api/v1/incidents?state=bogus", headers=auth) as r:
            assert r.status == 400


async def test_metrics_exposition(script: Script, tmp_path: Path) -> None:
    async with running(config(tmp_path)) as rx:
        await rx.post(fixture_bytes("firing-single.json"), token="s3cr3t")
        async with rx.http.get(f"{rx.url}/metrics") as response:
            text = await response.text()
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {
            "maintwatch_receiver_webhooks",
            "maintwatch_receiver_incidents",
            "maintwatch_receiver_outbox_messages",
            "maintwatch_receiver_outbox_oldest_pending_age_seconds",
            "maintwatch_receiver_delivery_latency_seconds",
            "maintwatch_receiver_notifications",
        } <= names
        assert "s3cr3t" not in text
