"""Slack, Teams and Mattermost channels against local webhook servers: payloads and failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import ValidationError

from receiver.delivery.channels import REGISTRY
from receiver.delivery.channels.base import Channel, DeliveryError
from receiver.delivery.channels.mattermost import MattermostChannel, MattermostConfig
from receiver.delivery.channels.slack import SlackChannel, SlackConfig
from receiver.delivery.channels.teams import CARD_TYPE, TeamsChannel, TeamsConfig
from tests.receiver._channel_helpers import (
    HOSTILE,
    make_context,
    make_notification,
    recording_server,
    stall,
    status,
)

HOSTILE_LABELS = {"alertname": "BackupTooOld", "severity": "critical", "team": HOSTILE}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return the shared client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def make_channel(kind: str, url: str, http: aiohttp.ClientSession, **fields: Any) -> Channel[Any]:
    """Build a chat channel of `kind` posting to `url`."""
    cls = REGISTRY[kind]
    data = {"name": f"{kind}-ops", "type": kind, "webhook_url": url, "timeout": "2s", **fields}
    return cls(cls.config_type.model_validate(data), make_context(http))


async def test_slack_block_kit_message(http: aiohttp.ClientSession) -> None:
    n = make_notification(2, common_labels=HOSTILE_LABELS)
    async with recording_server() as server:
        await make_channel("slack", server.url + "/services/T/B/x", http).send(n)
    (request,) = server.requests
    assert request.path == "/services/T/B/x"
    assert request.headers["Content-Type"] == "application/json"
    body = request.json()
    assert body["text"] == "FIRING: BackupTooOld (2 alerts)"
    (attachment,) = body["attachments"]
    assert attachment["color"] == "#E01E5A"
    blocks = attachment["blocks"]
    assert [b["type"] for b in blocks] == ["header", "section", "section", "context", "actions"]
    assert blocks[0]["text"] == {"type": "plain_text", "text": "FIRING: BackupTooOld (2 alerts)"}
    fields = [f["text"] for f in blocks[2]["fields"]]
    assert "*severity*\ncritical" in fields
    # mrkdwn control characters are escaped; the Unicode stays as it is.
    assert '*team*\n&lt;script&gt;alert("x")&lt;/script&gt; &amp; Ünïcødé ✓' in fields
    assert "<https://runbooks.example/BackupTooOld|Runbook>" in blocks[3]["elements"][0]["text"]
    buttons = blocks[4]["elements"]
    assert [(b["action_id"], b["value"]) for b in buttons] == [
        ("maintwatch_ack", "ack:12"),
        ("maintwatch_resolve", "resolve:12"),
    ]


async def test_slack_digest_has_no_incident_buttons(http: aiohttp.ClientSession) -> None:
    async with recording_server() as server:
        await make_channel("slack", server.url, http).send(make_notification(kind="digest"))
    blocks = server.requests[0].json()["attachments"][0]["blocks"]
    assert not [b for b in blocks if b["type"] == "actions"]


@pytest.mark.parametrize(
    ("kind", "colour", "actions"),
    [("resolved", "#2EB886", []), ("acknowledged", "#7A7A7A", ["resolve:12"])],
)
async def test_slack_colour_and_buttons_follow_status(
    http: aiohttp.ClientSession, kind: str, colour: str, actions: list[str]
) -> None:
    async with recording_server() as server:
        await make_channel("slack", server.url, http).send(make_notification(kind=kind))
    attachment = server.requests[0].json()["attachments"][0]
    assert attachment["color"] == colour
    found = [b for b in attachment["blocks"] if b["type"] == "actions"]
    assert [e["value"] for block in found for e in block["elements"]] == actions


async def test_teams_adaptive_card(http: aiohttp.ClientSession) -> None:
    n = make_notification(1, common_labels=HOSTILE_LABELS)
    async with recording_server(status(202)) as server:
        await make_channel("teams", server.url, http).send(n)
    body = server.requests[0].json()
    assert body["type"] == "message"
    (attachment,) = body["attachments"]
    assert attachment["contentType"] == CARD_TYPE
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.4"
    assert card["body"][0]["text"] == "FIRING: BackupTooOld"
    assert card["body"][0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for f in card["body"][-1]["facts"]}
    assert facts["team"] == HOSTILE
    assert facts["alerts"] == "1"
    assert [(a["type"], a["title"]) for a in card["actions"]] == [
        ("Action.OpenUrl", "Acknowledge"),
        ("Action.OpenUrl", "Resolve"),
        ("Action.OpenUrl", "Incident"),
        ("Action.OpenUrl", "Runbook"),
    ]


@pytest.mark.parametrize(
    ("kind", "ids"),
    [("firing", ["ack", "resolve"]), ("acknowledged", ["resolve"]), ("resolved", [])],
)
async def test_mattermost_buttons_call_back_with_signed_tokens(
    http: aiohttp.ClientSession, kind: str, ids: list[str]
) -> None:
    n = make_notification(
        kind=kind,
        chat_callback_url="https://pager.example/webhooks/mattermost",
        chat_ack_token="tok-ack",
        chat_resolve_token="tok-res",
    )
    async with recording_server() as server:
        await make_channel("mattermost", server.url, http).send(n)
    (attachment,) = server.requests[0].json()["attachments"]
    actions = attachment.get("actions", [])
    assert [a["id"] for a in actions] == ids
    tokens = {"ack": "tok-ack", "resolve": "tok-res"}
    for action in actions:
        assert action["integration"] == {
            "url": "https://pager.example/webhooks/mattermost",
            "context": {"token": tokens[action["id"]]},
        }


async def test_mattermost_without_callbacks_has_no_buttons(http: aiohttp.ClientSession) -> None:
    async with recording_server() as server:
        await make_channel("mattermost", server.url, http).send(make_notification())
    assert "actions" not in server.requests[0].json()["attachments"][0]


async def test_mattermost_attachment(http: aiohttp.ClientSession) -> None:
    n = make_notification(3, common_labels=HOSTILE_LABELS)
    async with recording_server() as server:
        await make_channel("mattermost", server.url, http, username="maintwatch").send(n)
    body = server.requests[0].json()
    assert body["username"] == "maintwatch"
    assert "channel" not in body
    assert body["props"] == {"maintwatch": {"incident_id": 12, "id": "out-42"}}
    (attachment,) = body["attachments"]
    assert attachment["color"] == "#E01E5A"
    assert attachment["title"] == "FIRING: BackupTooOld (3 alerts)"
    assert attachment["title_link"] == "https://pager.example/incidents/12"
    assert {"short": True, "title": "team", "value": HOSTILE} in attachment["fields"]
    assert "[Acknowledge](https://pager.example/ack/tok12)" in attachment["text"]
    assert "• [firing] Backup db2 is 30h old backup=db2" in attachment["text"]


@pytest.mark.parametrize("kind", ["slack", "teams", "mattermost"])
@pytest.mark.parametrize(
    ("code", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
async def test_http_errors_are_classified(
    http: aiohttp.ClientSession, kind: str, code: int, retryable: bool
) -> None:
    async with recording_server(status(code, "invalid_payload")) as server:
        with pytest.raises(DeliveryError) as caught:
            await make_channel(kind, server.url, http).send(make_notification())
    assert caught.value.retryable is retryable
    assert caught.value.reason == f"HTTP {code}: invalid_payload"


async def test_retry_after_is_passed_on(http: aiohttp.ClientSession) -> None:
    async with recording_server(status(429, "slow down", {"Retry-After": "30"})) as server:
        with pytest.raises(DeliveryError) as caught:
            await make_channel("slack", server.url, http).send(make_notification())
    assert caught.value.retry_after == 30


@pytest.mark.parametrize("kind", ["slack", "teams", "mattermost"])
async def test_slow_server_times_out_retryable(http: aiohttp.ClientSession, kind: str) -> None:
    async with recording_server(stall) as server:
        channel = make_channel(kind, server.url, http, timeout="0.2s")
        with pytest.raises(DeliveryError, match=r"timed out after 0\.2s") as caught:
            await channel.send(make_notification())
    assert caught.value.retryable is True


async def test_secret_url_never_appears_in_reasons(http: aiohttp.ClientSession) -> None:
    url = "http://127.0.0.1:9/services/T000/B000/SECRET"
    with pytest.raises(DeliveryError) as caught:
        await make_channel("slack", url, http).send(make_notification())
    assert caught.value.retryable is True
    assert "SECRET" not in caught.value.reason


async def test_webhook_url_file(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    async with recording_server() as server:
        path = tmp_path / "slack-url"
        path.write_text(server.url + "/hook\n")
        cfg = SlackConfig.model_validate(
            {"name": "s", "type": "slack", "webhook_url_file": str(path)}
        )
        await SlackChannel(cfg, make_context(http)).send(make_notification())
    assert server.requests[0].path == "/hook"


@pytest.mark.parametrize(
    ("model", "kind"),
    [(SlackConfig, "slack"), (TeamsConfig, "teams"), (MattermostConfig, "mattermost")],
)
def test_exactly_one_webhook_url(model: type[SlackConfig], kind: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="exactly one of webhook_url and webhook_url_file"):
        model.model_validate({"name": "x", "type": kind})
    with pytest.raises(ValidationError, match="cannot read secret file"):
        model.model_validate(
            {"name": "x", "type": kind, "webhook_url_file": str(tmp_path / "none")}
        )


def test_registry_kinds_match_config_types() -> None:
    assert sorted(REGISTRY) == [
        "console",
        "email",
        "file",
        "mattermost",
        "slack",
        "slack_bot",
        "sms",
        "teams",
        "webhook",
    ]
    assert REGISTRY["teams"] is TeamsChannel
    assert REGISTRY["mattermost"] is MattermostChannel
