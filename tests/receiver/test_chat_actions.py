"""Slack buttons (signed requests, 5-minute window) and Mattermost callbacks (signed context)."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from receiver.ack.chat import parse_value
from receiver.ack.links import derive, mattermost_context
from receiver.appkeys import CLOCK, LOG, WORKER
from receiver.delivery.channels.slack import after_click, slack_message
from receiver.web.state import WEB
from tests.receiver._ack_helpers import SLACK_SECRET, ack_config, incident, serve
from tests.receiver._channel_helpers import (
    RecordingServer,
    make_notification,
    recording_server,
    status,
)
from tests.receiver._helpers import (
    T0,
    FakeClock,
    Running,
    Script,
    fixture_bytes,
    store_yaml,
)


def test_parse_value() -> None:
    assert parse_value("ack:12") == ("ack", 12)
    assert parse_value("resolve:3") == ("resolve", 3)
    assert parse_value("ack:") is None
    assert parse_value("delete:3") is None


@pytest.fixture
async def rx(script: Script, tmp_path: Path) -> AsyncIterator[Running]:
    """Serve a receiver with incident 1 open, clock at T0."""
    text = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), "https://pager.example.org")
    async with serve(text, FakeClock(T0)) as running:
        assert (await running.post(fixture_bytes("firing-single.json"))).status == 200
        yield running


@pytest.fixture
async def slack_hooks() -> AsyncIterator[RecordingServer]:
    """Stand in for Slack's response_url endpoint (hooks.slack.com)."""
    async with recording_server() as server:
        yield server


def posted_message() -> dict[str, Any]:
    """Return the message the Slack channel posts for incident 1 (what Slack sends back)."""
    return slack_message(make_notification(incident_id=1), "[FIRING] DiskFull", "disk full")


def slack_body(
    value: str, username: str = "alice.a", response_url: str = "https://hooks.slack.invalid/a/1"
) -> bytes:
    """Return a block_actions request body as Slack sends it."""
    payload = {
        "type": "block_actions",
        "user": {"id": "U123", "username": username, "name": username},
        "actions": [{"action_id": "maintwatch_ack", "value": value, "type": "button"}],
        "response_url": response_url,
        "message": posted_message(),
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def elements(message: dict[str, Any], block_type: str, key: str) -> list[str]:
    """Return `key` of every element in the message's blocks of one type."""
    return [
        element[key]
        for attachment in message["attachments"]
        for block in attachment["blocks"]
        if block["type"] == block_type
        for element in block["elements"]
    ]


def buttons(message: dict[str, Any]) -> list[str]:
    """Return the button values left in a (replaced) Slack message."""
    return elements(message, "actions", "value")


def notes(message: dict[str, Any]) -> list[str]:
    """Return the context lines of a Slack message."""
    return elements(message, "context", "text")


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


async def test_slack_ack_maps_user_to_person_and_edits_the_message(
    rx: Running, slack_hooks: RecordingServer
) -> None:
    status, text = await slack(rx, slack_body("ack:1", response_url=slack_hooks.url + "/a/1"))
    assert status == 200
    assert json.loads(text)["text"] == "Incident 1 acknowledged by alice."
    found = await incident(rx, 1)
    assert (found["state"], found["acked_by"]) == ("acknowledged", "alice")
    # Slack ignores the HTTP answer to a button: the message is replaced via response_url.
    (edit,) = slack_hooks.requests
    replaced = edit.json()
    assert replaced["replace_original"] is True
    assert buttons(posted_message()) == ["ack:1", "resolve:1"]
    assert buttons(replaced) == ["resolve:1"]
    assert notes(replaced)[-1] == "Acknowledged by *alice*"
    assert replaced["text"] == posted_message()["text"]


async def test_slack_unknown_user_and_resolve(rx: Running, slack_hooks: RecordingServer) -> None:
    url = slack_hooks.url + "/a/1"
    status, text = await slack(rx, slack_body("resolve:1", "carol", response_url=url))
    assert status == 200
    found = await incident(rx, 1)
    assert (found["state"], found["resolved_by"]) == ("resolved", "slack:carol")
    resolved = slack_hooks.requests[0].json()
    assert buttons(resolved) == []
    assert notes(resolved)[-1] == "Resolved by *slack:carol*"
    _, text = await slack(rx, slack_body("ack:1", response_url=url))
    assert "incident 1" in json.loads(text)["text"]  # refused: already resolved
    assert (await incident(rx, 1))["state"] == "resolved"
    refused = slack_hooks.requests[1].json()  # told to the clicker only, message untouched
    assert refused == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": json.loads(text)["text"],
    }


async def test_a_failed_message_edit_is_logged_and_the_ack_stands(
    rx: Running, script: Script
) -> None:
    async with recording_server(status(500)) as broken:
        body = slack_body("ack:1", response_url=broken.url + "/a/1")
        status_code, _ = await slack(rx, body)
    assert status_code == 200
    assert (await incident(rx, 1))["state"] == "acknowledged"
    calls = rx.app[LOG]._logger.calls  # the app's recording logger
    failed = [c.kwargs for c in calls if c.kwargs.get("event") == "chat_update_failed"]
    assert [(e["system"], e["incident_id"]) for e in failed] == [("slack", 1)]


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
    # `user_name` is not signed: anyone holding the post's token could claim to be bob. The
    # actor is what the token proves: a button of a channel post, so `mattermost`.
    status, answer = await mattermost(rx, mattermost_context(key, 1, "ack", T0), user="bob.b")
    assert status == 200
    assert answer["ephemeral_text"] == "Incident 1 acknowledged by mattermost."
    assert answer["update"] == {"message": "**Acknowledged** by mattermost"}  # buttons kept
    assert (await incident(rx, 1))["acked_by"] == "mattermost"


async def test_delivered_page_carries_a_working_mattermost_button(
    rx: Running, script: Script
) -> None:
    await rx.app[WORKER].run_once()
    page = script.sent["chat"][0]
    assert page.chat_callback_url == "https://pager.example.org/webhooks/mattermost"
    status, answer = await mattermost(rx, {"token": page.chat_ack_token})
    assert status == 200
    assert answer["ephemeral_text"] == "Incident 1 acknowledged by mattermost."


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


def test_after_click_on_a_message_with_top_level_blocks() -> None:
    message = {
        "text": "t",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "x"}},
            {
                "type": "actions",
                "block_id": "maintwatch_actions",
                "elements": [{"value": "ack:4"}, {"value": "resolve:4"}],
            },
        ],
    }
    acked = after_click(message, "ack", "Acknowledged by *a*")
    assert [b["type"] for b in acked["blocks"]] == ["section", "actions", "context"]
    assert acked["blocks"][1]["elements"] == [{"value": "resolve:4"}]
    resolved = after_click(message, "resolve", "Resolved by *a*")
    assert [b["type"] for b in resolved["blocks"]] == ["section", "context"]
    assert message["blocks"][1]["elements"] == [{"value": "ack:4"}, {"value": "resolve:4"}]
