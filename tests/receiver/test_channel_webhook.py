"""Generic webhook channel: documented JSON shape, HMAC signature, custom headers, failures."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from receiver.delivery.channels.base import DeliveryError
from receiver.delivery.channels.webhook import SIGNATURE_HEADER, WebhookChannel, WebhookConfig, sign
from tests.receiver._channel_helpers import (
    HOSTILE,
    NOW,
    make_alert,
    make_context,
    make_notification,
    make_recipient,
    recording_server,
    stall,
    status,
)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return the shared client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def channel(url: str, http: aiohttp.ClientSession, **fields: Any) -> WebhookChannel:
    """Return a webhook channel posting to `url`."""
    data = {"name": "hook", "type": "webhook", "url": url, "timeout": "2s", **fields}
    return WebhookChannel(WebhookConfig.model_validate(data), make_context(http))


async def test_payload_shape(http: aiohttp.ClientSession) -> None:
    resolved = make_alert(1, status="resolved", ends_at=make_alert().starts_at.replace(hour=13))
    n = make_notification(
        common_labels={"alertname": "BackupTooOld", "severity": "critical", "team": HOSTILE},
        alerts=(make_alert(0), resolved),
        recipient=make_recipient(),
        escalation_step=1,
    )
    async with recording_server() as server:
        receipt = await channel(server.url + "/in", http).send(n)
    (request,) = server.requests
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "out-42"
    assert SIGNATURE_HEADER not in request.headers
    body = request.json()
    assert body["text"].startswith("[FIRING] critical BackupTooOld (2 alerts)")
    del body["text"]
    assert body == {
        "version": "1",
        "id": "out-42",
        "kind": "firing",
        "incident": {"id": 12, "status": "triggered"},
        "severity": "critical",
        "title": "[FIRING:1] BackupTooOld (ops)",
        "group_labels": {"alertname": "BackupTooOld"},
        "common_labels": {"alertname": "BackupTooOld", "severity": "critical", "team": HOSTILE},
        "common_annotations": {"runbook_url": "https://runbooks.example/BackupTooOld"},
        "alerts": [
            {
                "fingerprint": "fp0000",
                "status": "firing",
                "labels": make_alert(0).labels,
                "annotations": make_alert(0).annotations,
                "starts_at": "2026-11-22T12:00:00Z",
                "ends_at": None,
                "generator_url": "http://prometheus:9090/graph?g0.expr=up",
            },
            {
                "fingerprint": "fp0001",
                "status": "resolved",
                "labels": make_alert(1).labels,
                "annotations": make_alert(1).annotations,
                "starts_at": "2026-11-22T12:00:00Z",
                "ends_at": "2026-11-22T13:00:00Z",
                "generator_url": "http://prometheus:9090/graph?g0.expr=up",
            },
        ],
        "truncated_alerts": 0,
        "recipient": {
            "id": "alice",
            "name": "Alice",
            "email": "alice@example.org",
            "phone": "+14155550100",
            "chat": None,
            "timezone": "UTC",
        },
        "escalation_step": 1,
        "reply_code": "12",
        "acted_by": "",
        "links": {
            "incident": "https://pager.example/incidents/12",
            "ack": "https://pager.example/ack/tok12",
            "resolve": "https://pager.example/ack/res12",
            "runbook": "https://runbooks.example/BackupTooOld",
            "alertmanager": "http://alertmanager:9093",
        },
    }
    assert receipt.provider_id == "out-42"


async def test_signature_and_custom_headers(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("sh4red\n")
    async with recording_server() as server:
        hook = channel(
            server.url, http, secret_file=str(secret), headers={"X-Team": "ops", "X-Env": "prod"}
        )
        await hook.send(make_notification())
    request = server.requests[0]
    assert request.headers["X-Team"] == "ops"
    assert request.headers["X-Env"] == "prod"
    # Verify the way a receiver would: recompute over "t." + raw body with the shared secret.
    header = request.headers[SIGNATURE_HEADER]
    fields = dict(part.split("=", 1) for part in header.split(","))
    assert fields["t"] == str(int(NOW))
    expected = hmac.new(b"sh4red", f"{fields['t']}.".encode() + request.body, hashlib.sha256)
    assert hmac.compare_digest(fields["v1"], expected.hexdigest())
    assert header == sign(b"sh4red", int(NOW), request.body)


@pytest.mark.parametrize(("code", "retryable"), [(500, True), (408, True), (400, False)])
async def test_errors_are_classified(
    http: aiohttp.ClientSession, code: int, retryable: bool
) -> None:
    async with recording_server(status(code, "nope")) as server:
        with pytest.raises(DeliveryError) as caught:
            await channel(server.url, http).send(make_notification())
    assert caught.value.retryable is retryable


async def test_timeout_is_retryable(http: aiohttp.ClientSession) -> None:
    async with recording_server(stall) as server:
        with pytest.raises(DeliveryError, match="timed out") as caught:
            await channel(server.url, http, timeout="0.2s").send(make_notification())
    assert caught.value.retryable is True


def test_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="URL"):
        WebhookConfig.model_validate({"name": "h", "type": "webhook", "url": "ftp//nope"})
