"""SMS channel: the real twilio client against a local fake of the Messages API; text fitting."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from receiver.delivery.channels._sms_text import encoding, fit, segments, units
from receiver.delivery.channels.base import DeliveryError
from receiver.delivery.channels.sms import SmsChannel, SmsConfig
from tests.receiver._channel_helpers import (
    HOSTILE,
    Recorded,
    make_context,
    make_notification,
    make_recipient,
    recording_server,
    stall,
    status,
)
from tests.receiver._process_helpers import fake_twilio

SID = "AC" + "0" * 31 + "1"
SERVICE = "MG" + "a" * 32


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return the shared client session the channel's twilio client uses."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    """Write a Twilio auth token file."""
    path = tmp_path / "token"
    path.write_text("tok3n\n")
    return str(path)


async def created(request: web.Request) -> web.StreamResponse:
    """Answer like Twilio's Messages API after queueing a message."""
    form = await request.post()
    body = {"sid": "SM" + "f" * 32, "status": "queued", "to": form["To"], "body": form["Body"]}
    return web.json_response(body, status=201)


def twilio_error(http_status: int, code: int, message: str) -> Any:
    """Return a responder with Twilio's error body."""
    body = {"code": code, "message": message, "more_info": "https://x", "status": http_status}
    return status(http_status, json.dumps(body), {"Content-Type": "application/json"})


def config(base_url: str, token_file: str, **fields: Any) -> SmsConfig:
    """Return an SMS config pointed at the fake Twilio."""
    data: dict[str, Any] = {
        "name": "sms",
        "type": "sms",
        "account_sid": SID,
        "auth_token_file": token_file,
        "from": "+15005550006",
        "to": ["+14155550199"],
        "api_base_url": base_url,
        "timeout": "2s",
        **fields,
    }
    return SmsConfig.model_validate(data)


def form(request: Recorded) -> dict[str, str]:
    """Return the form fields of a recorded request (single values)."""
    return {k: v[0] for k, v in parse_qs(request.body.decode()).items()}


async def test_sends_form_fields_twilio_expects(
    http: aiohttp.ClientSession, token_file: str
) -> None:
    async with recording_server(created) as server:
        channel = SmsChannel(config(server.url, token_file), make_context(http))
        receipt = await channel.send(make_notification(2, recipient=make_recipient()))
    (request,) = server.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    expected_auth = base64.b64encode(f"{SID}:tok3n".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected_auth}"
    assert form(request) == {
        "To": "+14155550100",
        "From": "+15005550006",
        "Body": 'CRITICAL BackupTooOld x2: Backup db0 is 30h old Reply "12 ack" '
        "https://pager.example/ack/tok12 https://runbooks.example/BackupTooOld",
    }
    assert receipt.provider_id == "SM" + "f" * 32
    assert SmsChannel.at_most_once is True


async def test_messaging_service_and_configured_numbers(
    http: aiohttp.ClientSession, token_file: str
) -> None:
    async with recording_server(created) as server:
        cfg = config(
            server.url,
            token_file,
            **{"from": None},
            messaging_service_sid=SERVICE,
            to=["+14155550199", "+447700900123"],
        )
        receipt = await SmsChannel(cfg, make_context(http)).send(make_notification(kind="resolved"))
    sent = [form(r) for r in server.requests]
    assert [f["To"] for f in sent] == ["+14155550199", "+447700900123"]
    assert all(f["MessagingServiceSid"] == SERVICE and "From" not in f for f in sent)
    # No ack hint nor ack link; the runbook stays.
    assert sent[0]["Body"] == (
        "RESOLVED BackupTooOld: Backup db0 is 30h old https://runbooks.example/BackupTooOld"
    )
    assert receipt.provider_id.count(",") == 1


async def test_unicode_and_html_reach_twilio_unescaped(
    http: aiohttp.ClientSession, token_file: str
) -> None:
    n = make_notification(common_annotations={"summary": HOSTILE}, reply_code="", ack_url="")
    async with recording_server(created) as server:
        await SmsChannel(config(server.url, token_file), make_context(http)).send(n)
    body = form(server.requests[0])["Body"]
    assert body == f"CRITICAL BackupTooOld: {HOSTILE} https://runbooks.example/BackupTooOld"


@pytest.mark.parametrize(
    ("http_status", "code", "retryable"),
    [(400, 21211, False), (401, 20003, False), (429, 20429, True), (500, 20500, True)],
)
async def test_twilio_errors_are_classified(
    http: aiohttp.ClientSession, token_file: str, http_status: int, code: int, retryable: bool
) -> None:
    responder = twilio_error(http_status, code, "The 'To' number is not a valid phone number.")
    async with recording_server(responder) as server:
        channel = SmsChannel(config(server.url, token_file), make_context(http))
        with pytest.raises(DeliveryError) as caught:
            await channel.send(make_notification())
    assert caught.value.retryable is retryable
    assert f"Twilio error {code} (HTTP {http_status})" in caught.value.reason


async def test_timeout_may_have_sent_refused_connection_did_not(
    http: aiohttp.ClientSession, token_file: str
) -> None:
    async with recording_server(stall) as server:
        channel = SmsChannel(config(server.url, token_file, timeout="0.3s"), make_context(http))
        with pytest.raises(DeliveryError, match="timed out") as caught:
            await channel.send(make_notification())
        assert (caught.value.retryable, caught.value.maybe_sent) == (True, True)
    gone = SmsChannel(config(server.url, token_file), make_context(http))  # server is down now
    with pytest.raises(DeliveryError, match="could not connect to Twilio") as caught:
        await gone.send(make_notification())
    assert (caught.value.retryable, caught.value.maybe_sent) == (True, False)


async def test_resend_asks_twilio_and_sends_only_what_it_lacks(
    http: aiohttp.ClientSession, token_file: str
) -> None:
    numbers = ["+14155550199", "+14155550198"]
    async with fake_twilio() as twilio:
        channel = SmsChannel(config(twilio.url, token_file, to=numbers), make_context(http))
        since = time.time()
        twilio.answers = [None, 503]  # the first number gets it, the second attempt fails
        with pytest.raises(DeliveryError) as caught:
            await channel.send(make_notification())
        assert caught.value.maybe_sent  # one number has it: a retry must ask first
        receipt = await channel.resend(make_notification(), since)
        assert [m["to"] for m in twilio.messages] == numbers
        assert receipt.provider_id == ",".join(m["sid"] for m in twilio.messages)
        assert twilio.lookups == 2
        assert receipt.found == 1
        again = await channel.resend(make_notification(), since)  # both have it: nothing sent
        assert (again.provider_id, again.found) == (receipt.provider_id, 2)
        assert len(twilio.messages) == 2
        twilio.list_status = 500
        with pytest.raises(DeliveryError, match="could not ask Twilio") as caught:
            await channel.resend(make_notification(), since)
        assert (caught.value.retryable, caught.value.maybe_sent) == (True, True)


async def test_recipient_with_bad_number_is_permanent(
    http: aiohttp.ClientSession, token_file: str
) -> None:
    channel = SmsChannel(config("http://127.0.0.1:9", token_file), make_context(http))
    with pytest.raises(DeliveryError, match=r"alice: '0170 1234' is not an E\.164") as caught:
        await channel.send(make_notification(recipient=make_recipient(phone="0170 1234")))
    assert caught.value.retryable is False


def test_config_rejects_bad_numbers_and_sender_choice(token_file: str) -> None:
    with pytest.raises(ValidationError) as caught:
        config("http://x", token_file, to=["+14155550199", "004915112345678", "+12"])
    text = str(caught.value)
    assert "'004915112345678' is not an E.164 phone number" in text
    assert "'+12' is not an E.164" in text
    with pytest.raises(ValidationError, match="exactly one of from and messaging_service_sid"):
        config("http://x", token_file, messaging_service_sid=SERVICE)


# --- text fitting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "enc", "count", "segs"),
    [
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two septets
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("ü" * 160, "GSM-7", 160, 1),  # ü is in the GSM alphabet
        ("ç" + "a" * 69, "UCS-2", 70, 1),  # ç (lower case) is not
        ("✓" * 71, "UCS-2", 71, 2),
        ("🔥" * 35, "UCS-2", 70, 1),  # astral characters are two UTF-16 units
    ],
)
def test_encoding_and_segments(text: str, enc: str, count: int, segs: int) -> None:
    assert (encoding(text), units(text), segments(text)) == (enc, count, segs)


def test_fit_drops_the_link_before_cutting_the_summary() -> None:
    head = "CRITICAL DiskFull x3: " + "disk /var is full on host " * 20
    link = "https://pager.example/ack/" + "t" * 40
    body = fit(head, 'Reply "12 ack"', link)
    assert link not in body
    assert body.endswith('... Reply "12 ack"')
    assert body.startswith("CRITICAL DiskFull x3: disk /var")
    assert segments(body) == 2


def test_fit_keeps_everything_when_short() -> None:
    assert fit("WARNING X:\n  short", 'Reply "7 ack"', "https://a.b/c") == (
        'WARNING X: short Reply "7 ack" https://a.b/c'
    )


@given(
    head=st.text(min_size=1, max_size=600),
    code=st.integers(min_value=1, max_value=99999),
    max_segments=st.integers(min_value=1, max_value=3),
)
def test_fit_always_fits_and_keeps_the_reply_hint(head: str, code: int, max_segments: int) -> None:
    hint = f'Reply "{code} ack"'
    body = fit(head, hint, "https://pager.example/ack/abcdef", max_segments)
    assert segments(body) <= max_segments
    assert body.endswith(hint) or body.endswith("https://pager.example/ack/abcdef")
