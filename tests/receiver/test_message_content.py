"""What every channel tells on-call: the value (description), an absolute runbook link, the
right links for the message's state, resolved alerts as resolved, bidi text isolated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from receiver.delivery.channels import REGISTRY
from receiver.delivery.channels._sms_text import segments
from receiver.delivery.channels.base import Notification
from receiver.delivery.channels.console import ConsoleChannel, ConsoleConfig
from receiver.delivery.channels.email import EmailChannel
from receiver.delivery.channels.file import FileChannel, FileConfig
from receiver.delivery.channels.sms import SmsChannel
from receiver.delivery.notify import notification
from tests.receiver._channel_helpers import (
    make_alert,
    make_context,
    make_notification,
    make_recipient,
    recording_server,
)
from tests.receiver.test_channel_email import Mailbox, smtp_server
from tests.receiver.test_channel_email import config as email_config
from tests.receiver.test_channel_slack_bot import FakeSlack, slack  # noqa: F401 - a fixture
from tests.receiver.test_channel_slack_bot import channel as slack_bot_channel
from tests.receiver.test_channel_sms import config as sms_config
from tests.receiver.test_channel_sms import created, form

VALUE = "enqueued 1h 0m 22s ago, above 15m"
RUNBOOK = "https://pager.example/docs/runbooks/QueueOldestJobTooOld.md"
ENDED = datetime(2026, 11, 22, 12, 42, tzinfo=UTC)


def on_call(**overrides: Any) -> Notification:
    """Return a firing page whose runbook is the rules' relative link."""
    alert = make_alert(
        annotations={
            "summary": "The oldest job of a queue waits too long.",
            "description": VALUE,
            "runbook_url": "docs/runbooks/QueueOldestJobTooOld.md",
        }
    )
    base = make_notification(
        alerts=(alert,),
        common_annotations={"runbook_url": "docs/runbooks/QueueOldestJobTooOld.md"},
        receiver_url="https://pager.example/",
        recipient=make_recipient(),
    )
    return replace(base, **overrides)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return the shared client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def _posted(kind: str, n: Notification, http: aiohttp.ClientSession) -> str:
    """Send through a webhook-style channel; return the raw body it posted."""
    cls = REGISTRY[kind]
    url_field = "url" if kind == "webhook" else "webhook_url"
    async with recording_server() as server:
        data = {"name": kind, "type": kind, url_field: server.url + "/hook", "timeout": "2s"}
        await cls(cls.config_type.model_validate(data), make_context(http)).send(n)
    (request,) = server.requests
    return json.dumps(request.json(), ensure_ascii=False)


async def _mailed(n: Notification, http: aiohttp.ClientSession) -> tuple[str, str]:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        await EmailChannel(email_config(port), make_context(http)).send(n)
    message = mailbox.only()
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


async def _texted(n: Notification, http: aiohttp.ClientSession, token: str) -> str:
    async with recording_server(created) as server:
        await SmsChannel(sms_config(server.url, token), make_context(http)).send(n)
    return form(server.requests[0])["Body"]


async def _every_channel(
    n: Notification, http: aiohttp.ClientSession, tmp_path: Path, capsys: Any
) -> dict[str, str]:
    """Return what each channel delivered for `n`, keyed by channel kind."""
    out = {kind: await _posted(kind, n, http) for kind in ("slack", "teams", "mattermost")}
    out["webhook"] = await _posted("webhook", n, http)
    out["email text"], out["email html"] = await _mailed(n, http)
    (tmp_path / "token").write_text("tok3n\n")
    out["sms"] = await _texted(n, http, str(tmp_path / "token"))
    await ConsoleChannel(ConsoleConfig(name="c", type="console"), make_context(http)).send(n)
    out["console"] = capsys.readouterr().out
    path = tmp_path / "pages.jsonl"
    await FileChannel(FileConfig(name="f", type="file", path=str(path)), make_context(http)).send(n)
    out["file"] = path.read_text(encoding="utf-8")
    return out


async def test_every_channel_carries_the_value_and_an_absolute_runbook(
    http: aiohttp.ClientSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    delivered = await _every_channel(on_call(), http, tmp_path, capsys)
    for kind, body in delivered.items():
        assert VALUE in body, kind
        assert RUNBOOK in body, kind
    # The JSON channels also keep the annotations as Alertmanager sent them (data, not links).
    for kind in ("slack", "teams", "mattermost", "email text", "email html", "sms", "console"):
        assert "docs/runbooks" not in delivered[kind].replace(RUNBOOK, ""), kind
    assert json.loads(delivered["webhook"])["links"]["runbook"] == RUNBOOK
    assert segments(delivered["sms"]) <= 2
    assert delivered["sms"].startswith(f"CRITICAL BackupTooOld: {VALUE}")


async def test_resolved_messages_say_resolved_and_how_long_it_fired(
    http: aiohttp.ClientSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alert = replace(on_call().alerts[0], status="resolved", ends_at=ENDED)
    n = on_call(kind="resolved", incident_status="resolved", alerts=(alert,), ack_url="")
    delivered = await _every_channel(n, http, tmp_path, capsys)
    for kind in ("console", "email text", "sms"):
        assert "[firing]" not in delivered[kind], kind
        assert "42m" in delivered[kind], kind
    assert delivered["sms"].startswith(f"RESOLVED BackupTooOld after 42m: {VALUE}")
    assert "[resolved]" in delivered["console"]


def test_links_apply_only_while_their_action_does() -> None:
    stored = {
        "kind": "acknowledged",
        "incident_status": "acknowledged",
        "severity": "critical",
        "title": "t",
        "group_labels": {},
        "common_labels": {},
        "common_annotations": {},
        "alerts": [],
        "truncated_alerts": 0,
        "external_url": "",
        "incident_url": "https://pager.example/incidents/3",
    }
    links = {
        "ack_url": "https://pager.example/ack/a",
        "resolve_url": "https://pager.example/ack/r",
        "receiver_url": "https://pager.example",
    }
    acked = notification(1, 3, stored, None, lambda *_: links)
    assert (acked.ack_url, acked.resolve_url) == ("", links["resolve_url"])
    assert acked.receiver_url == "https://pager.example"
    resolved = notification(
        1, 3, {**stored, "kind": "resolved", "incident_status": "resolved"}, None, lambda *_: links
    )
    assert (resolved.ack_url, resolved.resolve_url) == ("", "")
    assert resolved.incident_url == stored["incident_url"]
    firing = notification(
        1, 3, {**stored, "kind": "firing", "incident_status": "triggered"}, None, lambda *_: links
    )
    assert firing.ack_url == links["ack_url"]


async def test_bidi_controls_in_labels_are_isolated(
    http: aiohttp.ClientSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spoof = "db\u202egnp.exe"
    n = on_call(common_labels={"alertname": "BackupTooOld", "severity": "critical", "db": spoof})
    await ConsoleChannel(ConsoleConfig(name="c", type="console"), make_context(http)).send(n)
    out = capsys.readouterr().out
    assert f"db=\u2068{spoof}\u2069" in out
    assert out.count("\u2068") == out.count("\u2069")


async def test_sms_keeps_value_and_ack_link_within_two_segments(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    long_value = (
        "The newest backup of set tongacp_db on db-primary.internal:9839 is 3h 0m 12s old, "
        "more than 2 × its expected maximum age (maintwatch_backup_max_age_seconds)."
    )
    alert = replace(on_call().alerts[0], annotations={"description": long_value})
    ack = "https://pager.example/ack/" + "t" * 110
    n = on_call(alerts=(alert,), ack_url=ack)
    (tmp_path / "token").write_text("tok3n\n")
    body = await _texted(n, http, str(tmp_path / "token"))
    assert segments(body) <= 2
    assert body.endswith(ack)  # the ack link is worth cutting the description's tail for
    assert "is 3h 0m 12s old, more than 2 x its" in body  # × spelled x: GSM-7, not UCS-2
    assert 'Reply "12 ack"' in body


async def test_slack_bot_carries_the_value_and_an_absolute_runbook(
    slack: FakeSlack,  # noqa: F811 - the fixture
    http: aiohttp.ClientSession,
) -> None:
    await slack_bot_channel(slack, http).send(on_call())
    (posted,) = slack.method("chat.postMessage")
    body = json.dumps(posted, ensure_ascii=False)
    assert VALUE in body
    assert RUNBOOK in body
