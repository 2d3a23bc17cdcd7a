"""The `slack_bot` channel through the real `slack_sdk` client, against a local Slack Web API.

The stand-in answers like Slack (`{"ok": true, "channel", "ts"}`, `ok: false` with an error
code, 429 with Retry-After) and records every call, so the tests see the exact form Slack's API
receives: the first page posted to the channel, follow-ups replied into its thread, the head
edited to the incident's state now — through the whole receiver: webhook, ack, resolve.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from maintwatch.configload import ConfigError
from receiver.appkeys import ACTIONS, LOG, STORE, WORKER
from receiver.config import load_config_text
from receiver.delivery.channels.base import DeliveryError
from receiver.delivery.channels.slack_bot import SlackBotChannel, SlackBotConfig
from tests.conftest import free_port
from tests.receiver._ack_helpers import serve
from tests.receiver._channel_helpers import RecordingLogger, make_context, make_notification
from tests.receiver._helpers import T0, FakeClock, Running, fixture_bytes, open_webhook, store_yaml

TOKEN = "xoxb-test-token-123"


@dataclass
class FakeSlack:
    """A local Slack Web API: `calls` in order; `fail` maps a method to its next answer."""

    url: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=dict)
    next_ts: int = 1_700_000_000

    def method(self, name: str) -> list[dict[str, Any]]:
        """Return the bodies of every call to one API method."""
        return [body for method, body in self.calls if method == name]


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    """Serve the fake Slack Web API on a free port."""
    port = free_port()
    fake = FakeSlack(f"http://127.0.0.1:{port}/api/")

    async def handle(request: web.Request) -> web.Response:
        name = request.match_info["method"]
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"ok": False, "error": "not_authed"})
        raw = await request.read()
        if request.content_type == "application/json":
            body = json.loads(raw)
        else:
            body = dict((await request.post()).items())
        fake.calls.append((name, body))
        if name in fake.fail:
            status, answer, headers = fake.fail.pop(name)
            if "echo" in answer:  # a proxy's error page that repeats the request, token included
                page = f"<html>bad gateway for {dict(request.headers)}</html>"
                return web.Response(status=status, text=page, content_type="text/html")
            return web.json_response(answer, status=status, headers=headers)
        fake.next_ts += 1
        ts = body.get("ts") or f"{fake.next_ts}.000100"
        return web.json_response({"ok": True, "channel": "C0SLACK", "ts": ts})

    app = web.Application()
    app.router.add_post("/api/{method}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return the shared client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def channel(fake: FakeSlack, http: aiohttp.ClientSession) -> SlackBotChannel:
    config = SlackBotConfig.model_validate(
        {"name": "ops-slack", "type": "slack_bot", "token": TOKEN, "channel": "#ops",
         "api_url": fake.url, "timeout": "3s"}
    )  # fmt: skip
    return SlackBotChannel(config, make_context(http, RecordingLogger()))


async def test_first_page_starts_a_thread_and_follow_ups_reply_in_it(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    bot = channel(slack, http)
    receipt = await bot.send(make_notification(2))
    (posted,) = slack.method("chat.postMessage")
    assert posted["channel"] == "#ops"
    assert "thread_ts" not in posted
    assert posted["text"] == "FIRING: BackupTooOld (2 alerts)"
    assert posted["attachments"][0]["blocks"][0]["type"] == "header"
    assert receipt.thread == {"channel": "C0SLACK", "ts": receipt.provider_id}

    acked = make_notification(2, kind="acknowledged", incident_status="acknowledged",
                              acted_by="alice", thread=receipt.thread)  # fmt: skip
    reply = await bot.send(acked)
    reply_body = slack.method("chat.postMessage")[1]
    assert (reply_body["channel"], reply_body["thread_ts"]) == ("C0SLACK", receipt.provider_id)
    assert reply.thread == {}  # the thread stays the first message's
    (update,) = slack.method("chat.update")
    assert (update["channel"], update["ts"]) == ("C0SLACK", receipt.provider_id)
    head_buttons = [e["value"] for e in update["attachments"][0]["blocks"][-1]["elements"]]
    assert head_buttons == ["resolve:12"]  # the head shows the acknowledged state now


async def test_slack_errors_are_classified(slack: FakeSlack, http: aiohttp.ClientSession) -> None:
    bot = channel(slack, http)
    slack.fail["chat.postMessage"] = (429, {"ok": False, "error": "ratelimited"},
                                      {"Retry-After": "7"})  # fmt: skip
    with pytest.raises(DeliveryError) as limited:
        await bot.send(make_notification())
    assert (limited.value.retryable, limited.value.retry_after) == (True, 7.0)
    slack.fail["chat.postMessage"] = (200, {"ok": False, "error": "channel_not_found"}, {})
    with pytest.raises(DeliveryError) as missing:
        await bot.send(make_notification())
    assert not missing.value.retryable
    assert "channel_not_found" in missing.value.reason
    slack.fail["chat.postMessage"] = (500, {"ok": False, "error": "internal_error"}, {})
    with pytest.raises(DeliveryError) as broken:
        await bot.send(make_notification())
    assert broken.value.retryable
    slack.fail["chat.postMessage"] = (502, {"echo": True}, {})
    with pytest.raises(DeliveryError) as proxied:
        await bot.send(make_notification())
    assert proxied.value.retryable
    assert proxied.value.reason.startswith("HTTP 502")
    reasons = [limited, missing, broken, proxied]
    assert TOKEN not in "".join(r.value.reason for r in reasons)


async def test_a_head_slack_will_not_edit_only_logs(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    bot = channel(slack, http)
    thread = {"channel": "C0SLACK", "ts": "1699999999.000100"}
    slack.fail["chat.update"] = (200, {"ok": False, "error": "cant_update_message"}, {})
    receipt = await bot.send(make_notification(kind="resolved", thread=thread))
    assert receipt.provider_id  # the reply went out: the send succeeded
    slack.fail["chat.update"] = (502, {"echo": True}, {})
    await bot.send(make_notification(kind="resolved", thread=thread))
    logged = bot.context.logger.events  # type: ignore[attr-defined]
    assert [e["event"] for e in logged] == ["slack_thread_head_not_updated"] * 2
    assert logged[0]["reason"] == "HTTP 200: cant_update_message"
    assert TOKEN not in str(logged)


async def test_unreachable_slack_is_retryable(http: aiohttp.ClientSession) -> None:
    dead = FakeSlack(f"http://127.0.0.1:{free_port()}/api/")
    with pytest.raises(DeliveryError) as caught:
        await channel(dead, http).send(make_notification())
    assert caught.value.retryable


def test_config_needs_exactly_one_token(tmp_path: Path) -> None:
    base = "channels: [{name: s, type: slack_bot, channel: C1"
    with pytest.raises(ConfigError, match=r"channels\[0\].*exactly one of token and token_file"):
        load_config_text(base + "}]\n", "rx.yml")
    (tmp_path / "tok").write_text(TOKEN + "\n")
    config = load_config_text(open_webhook(base + f", token_file: {tmp_path / 'tok'}}}]\n"))
    assert config.channel_configs[0].type == "slack_bot"


async def test_a_whole_incident_lives_in_one_thread(slack: FakeSlack, tmp_path: Path) -> None:
    text = (
        store_yaml("sqlite", tmp_path, "")
        + "external_url: https://pager.example.org\n"
        + "channels:\n"
        + f"  - {{name: ops-slack, type: slack_bot, token: {TOKEN}, channel: C0SLACK,\n"
        + f"      api_url: '{slack.url}'}}\n"
        + "default_route: {channels: [ops-slack]}\n"
    )
    clock = FakeClock(T0)
    async with serve(text, clock) as rx:
        assert (await rx.post(fixture_bytes("firing-single.json"))).status == 200
        await drain(rx)
        (page,) = slack.method("chat.postMessage")
        assert "thread_ts" not in page
        rows = [i.to_json() for i in await rx.app[STORE].incidents("triggered", {}, 5)]
        await rx.app[ACTIONS].ack(int(rows[0]["id"]), "alice", "api")
        await drain(rx)
        resolved = json.loads(fixture_bytes("resolved.json"))
        assert (await rx.post(json.dumps(resolved).encode())).status == 200
        await drain(rx)
    posts = slack.method("chat.postMessage")
    head_ts = f"{1_700_000_001}.000100"
    assert len(posts) >= 3
    assert all(p.get("thread_ts") == head_ts for p in posts[1:]), posts
    updates = slack.method("chat.update")
    assert {u["ts"] for u in updates} == {head_ts}
    assert updates[-1]["text"].startswith("RESOLVED")
    assert not [e for e in events(rx) if e.get("event") == "notification_failed"]


async def drain(rx: Running) -> None:
    """Deliver everything due now."""
    await rx.app[WORKER].run_once()


def events(rx: Running) -> list[dict[str, Any]]:
    """Return the app's logged events."""
    return [c.kwargs for c in rx.app[LOG]._logger.calls]
