"""Twilio inbound SMS replies: signature over the public URL, known senders, codes, help limit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from receiver.ack.sms import Command, parse_reply
from receiver.appkeys import ACTIONS
from tests.receiver._ack_helpers import TWILIO_TOKEN, ack_config, incident, serve
from tests.receiver._helpers import (
    T0,
    FakeClock,
    Running,
    Script,
    fixture_bytes,
    store_dsn,
    store_yaml,
)

PUBLIC = "https://pager.example.org/base"  # behind a proxy: not the address we listen on
ALICE = "+4915100000001"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12 ack", Command(12, "ack")),
        ("  12   ACK ", Command(12, "ack")),
        ("#12 res", Command(12, "resolve")),
        ("ack 12", Command(12, "ack")),
        ("12 resolve.", Command(12, "resolve")),
        ("12 a", Command(12, "ack")),
        ("12", None),
        ("ack", None),
        ("12 reboot", None),
        ("hello 12 ack", None),
        ("12 ack 13", None),
    ],
)
def test_parse_reply(text: str, expected: Command | None) -> None:
    assert parse_reply(text) == expected


@pytest.fixture(params=["sqlite", "postgres"])
async def rx(
    request: pytest.FixtureRequest, script: Script, tmp_path: Path, unique: str
) -> AsyncIterator[Running]:
    """Serve a receiver with incident 1 open."""
    async with store_dsn(request.param, unique) as dsn:
        text = ack_config(tmp_path, store_yaml(request.param, tmp_path, dsn), PUBLIC)
        async with serve(text, FakeClock(T0)) as running:
            assert (await running.post(fixture_bytes("firing-single.json"))).status == 200
            yield running


async def sms(
    rx: Running,
    body: str,
    sender: str = ALICE,
    token: str = TWILIO_TOKEN,
    query: str = "",
    sid: str = "",
) -> tuple[int, str]:
    """POST an inbound SMS the way Twilio does, signed over the public URL."""
    sid = sid or "SM" + uuid.uuid4().hex  # each message its own id, as Twilio gives it
    params = {"From": sender, "To": "+4930000000", "Body": body, "MessageSid": sid}
    url = f"{PUBLIC}/webhooks/twilio/sms" + (f"?{query}" if query else "")
    signature = RequestValidator(token).compute_signature(url, params)
    path = "/webhooks/twilio/sms" + (f"?{query}" if query else "")
    async with rx.http.post(
        rx.url + path, data=params, headers={"X-Twilio-Signature": signature}
    ) as response:
        return response.status, await response.text()


def message(twiml: str) -> str:
    """Return the text of a TwiML answer's message ('' when there is none)."""
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')
    if "<Message>" not in twiml:
        return ""
    return twiml.split("<Message>")[1].split("</Message>")[0]


async def test_ack_and_resolve_by_reply(rx: Running) -> None:
    status, text = await sms(rx, "1 ack", query="x=1")
    assert status == 200
    assert message(text) == "maintwatch: incident 1 acknowledged, thanks alice."
    found = await incident(rx, 1)
    assert (found["state"], found["acked_by"]) == ("acknowledged", "alice")
    assert "incident 1" in message((await sms(rx, "1 ack"))[1])  # a repeated ack is harmless
    assert "resolved" in message((await sms(rx, "1 res"))[1])
    assert (await incident(rx, 1))["state"] == "resolved"
    assert "incident 99" in message((await sms(rx, "99 ack"))[1])


async def test_a_replayed_request_is_applied_once(rx: Running) -> None:
    # A valid signature covers no time: a recorded "1 ack" re-acknowledged the incident after
    # someone had unacknowledged it. Each MessageSid now acts once, on both stores.
    sid = "SM" + "7" * 32
    assert "acknowledged" in message((await sms(rx, "1 ack", sid=sid))[1])
    await rx.app[ACTIONS].unack(1, "bob", "api")
    status, text = await sms(rx, "1 ack", sid=sid)
    assert (status, message(text)) == (200, "")
    assert (await incident(rx, 1))["state"] == "triggered"
    assert "acknowledged" in message((await sms(rx, "1 ack"))[1])  # a new message still acts


async def test_bad_signature_and_unknown_sender(rx: Running) -> None:
    assert (await sms(rx, "1 ack", token="wrong"))[0] == 403
    async with rx.http.post(rx.url + "/webhooks/twilio/sms", data={"From": ALICE}) as response:
        assert response.status == 403
    status, text = await sms(rx, "1 ack", sender="+4915199999999")
    assert (status, message(text)) == (200, "")  # no reply to strangers
    assert (await incident(rx, 1))["state"] == "triggered"


async def test_help_is_rate_limited_and_escaped(rx: Running) -> None:
    first = message((await sms(rx, "what <is> this & that"))[1])
    assert "&lt;id&gt; ack" in first  # XML-escaped
    assert message((await sms(rx, "??"))[1]) != ""
    assert message((await sms(rx, "???"))[1]) == ""  # help_replies_per_hour: 2
    assert message((await sms(rx, "hi", sender="+4915100000002"))[1]) != ""  # per number
    from receiver.appkeys import CLOCK

    rx.app[CLOCK].advance(3601)  # type: ignore[attr-defined]
    assert message((await sms(rx, "again"))[1]) != ""
