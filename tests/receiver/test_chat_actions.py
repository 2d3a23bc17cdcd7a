"""Slack buttons (signed requests, 5-minute window) and Mattermost callbacks (signed context)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from receiver.appkeys import CLOCK, WORKER
from receiver.chat_actions import parse_value
from receiver.links import derive, mattermost_context
from receiver.web.state import WEB
from tests.receiver._ack_helpers import SLACK_SECRET, ack_config, incident, serve
from tests.receiver._helpers import (
    T0,
    FakeClock,
    Running,
    Script,
    fixture_bytes,
    register_script,
    store_yaml,
)


def test_parse_value() -> None:
    assert parse_value("ack:12") == ("ack", 12)
    assert parse_value("resolve:3") == ("resolve", 3)
    assert parse_value("ack:") is None
    assert parse_value("delete:3") is None


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    """Register the scripted channels."""
    return register_script(monkeypatch)


@pytest.fixture
async def rx(script: Script, tmp_path: Path) -> AsyncIterator[Running]:
    """Serve a receiver with incident 1 open, clock at T0."""
    text = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), "https://pager.example.org")
    async with serve(text, FakeClock(T0)) as running:
        assert (await running.post(fixture_bytes("firing-single.json"))).status == 200
        yield running


def slack_body(value: str, username: str = "alice.a") -> bytes:
    """Return a block_actions request body as Slack sends it."""
    payload = {
        "type": "block_actions",
        "user": {"id": "U123", "username": username, "name": username},
        "actions": [{"action_id": "maintwatch_ack", "value": value, "type": "button"}],
        "response_url": "https://hooks.slack.invalid/actions/1",
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


async def slack(
    rx: Running, body: bytes, stamp: float = T0, secret: str = SLACK_SECRET
) -> tuple[int, str]:
    """POST a Slack interaction signed with `secret` at time `stamp`."""
    ts = str(int(stamp))
    signature = (
        "v0=" + hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    )
    headers = {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    async with rx.http.post(f"{rx.url}/webhooks/slack", data=body, headers=headers) as response:
        return response.status, await response.text()


async def test_slack_ack_maps_user_to_person(rx: Running) -> None:
    status, text = await slack(rx, slack_body("ack:1"))
    assert status == 200
    assert json.loads(text)["text"] == "Incident 1 acknowledged by alice."
    found = await incident(rx, 1)
    assert (found["state"], found["acked_by"]) == ("acknowledged", "alice")


async def test_slack_unknown_user_and_resolve(rx: Running) -> None:
    status, text = await slack(rx, slack_body("resolve:1", "carol"))
    assert status == 200
    found = await incident(rx, 1)
    assert (found["state"], found["resolved_by"]) == ("resolved", "slack:carol")
    _, text = await slack(rx, slack_body("ack:1"))
    assert "incident 1" in json.loads(text)["text"]  # refused: already resolved
    assert (await incident(rx, 1))["state"] == "resolved"


async def test_slack_rejects_bad_signatures_and_stale_requests(rx: Running) -> None:
    body = slack_body("ack:1")
    assert (await slack(rx, body, secret="wrong"))[0] == 401
    assert (await slack(rx, body, stamp=T0 - 301))[0] == 401  # replay outside the window
    assert (await slack(rx, body, stamp=T0 + 301))[0] == 401
    async with rx.http.post(f"{rx.url}/webhooks/slack", data=body) as response:
        assert response.status == 401
    assert (await incident(rx, 1))["state"] == "triggered"
    assert (await slack(rx, body, stamp=T0 - 299))[0] == 200


async def mattermost(
    rx: Running, context: dict[str, str], user: str = "bob.b"
) -> tuple[int, dict[str, str]]:
    """POST a Mattermost action callback."""
    data = {"user_id": "u1", "user_name": user, "post_id": "p1", "context": context}
    async with rx.http.post(f"{rx.url}/webhooks/mattermost", json=data) as response:
        return response.status, await response.json()


async def test_mattermost_signed_context(rx: Running) -> None:
    key = rx.app[WEB].keys.mattermost
    assert key == derive(b"links-secret-for-tests", "mattermost")
    status, answer = await mattermost(rx, mattermost_context(key, 1, "ack", T0))
    assert status == 200
    assert answer["ephemeral_text"] == "Incident 1 acknowledged by bob."
    assert (await incident(rx, 1))["acked_by"] == "bob"


async def test_delivered_page_carries_a_working_mattermost_button(
    rx: Running, script: Script
) -> None:
    await rx.app[WORKER].run_once()
    page = script.sent["chat"][0]
    assert page.chat_callback_url == "https://pager.example.org/webhooks/mattermost"
    status, answer = await mattermost(rx, {"token": page.chat_ack_token})
    assert status == 200
    assert answer["ephemeral_text"] == "Incident 1 acknowledged by bob."


async def test_mattermost_forged_or_expired_context(rx: Running) -> None:
    forged = mattermost_context(derive(b"guess", "mattermost"), 1, "resolve", T0)
    assert (await mattermost(rx, forged))[0] == 403
    links_key = rx.app[WEB].keys.links  # a link token is not a Mattermost token
    assert (await mattermost(rx, mattermost_context(links_key, 1, "resolve", T0)))[0] == 403
    assert (await mattermost(rx, {"nothing": "here"}))[0] == 400
    old = mattermost_context(rx.app[WEB].keys.mattermost, 1, "resolve", T0)
    rx.app[CLOCK].advance(31 * 86400)  # type: ignore[attr-defined]
    assert (await mattermost(rx, old))[0] == 410
    assert (await incident(rx, 1))["state"] == "triggered"
