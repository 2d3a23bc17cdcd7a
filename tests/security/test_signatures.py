"""Signed requests and tokens: tampered, replayed, expired, or made for something else."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from receiver.ack.links import _b64, _unb64, mattermost_context
from receiver.appkeys import CLOCK
from receiver.web.state import WEB
from tests.receiver._ack_helpers import API_TOKEN, SLACK_SECRET, TWILIO_TOKEN, incident
from tests.receiver._helpers import T0, FakeClock, Running, alert, fixture_bytes, payload
from tests.security._security_helpers import (
    WEBHOOK_TOKEN,
    login_cookie,
    served,
    slack_headers,
    twilio_signature,
)

ALICE = "+4915100000001"


@pytest.fixture
async def rx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Running]:
    """Serve the receiver with incidents 1 and 2 open, clock at T0."""
    async with served(monkeypatch, tmp_path, FakeClock(T0)) as running:
        first = await running.post(fixture_bytes("firing-single.json"), token=WEBHOOK_TOKEN)
        second = await running.post(
            payload(alert("b2"), group='{}:{alertname="Other"}'), token=WEBHOOK_TOKEN
        )
        assert (first.status, second.status) == (200, 200)
        yield running


async def send(
    rx: Running, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """POST raw bytes; return status and text."""
    async with rx.http.post(rx.url + path, data=body, headers=headers or {}) as response:
        return response.status, await response.text()


def twilio_request(rx: Running, params: dict[str, str], signed: dict[str, str]) -> dict[str, str]:
    """Return headers with a signature computed over `signed` (which may differ from params)."""
    url = f"{rx.config.external_url}/webhooks/twilio/sms"
    return {
        "X-Twilio-Signature": twilio_signature(TWILIO_TOKEN, url, signed),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_twilio_tampered_form_and_wrong_url_are_refused(rx: Running) -> None:
    good = {"From": ALICE, "To": "+4930000000", "Body": "1 ack"}
    tampered = [
        {**good, "Body": "1 res"},  # the body changed after signing
        {**good, "From": "+4915100000002"},  # someone else's number
        {**good, "Extra": "x"},  # a field added
    ]
    for params in tampered:
        headers = twilio_request(rx, params, good)
        assert (await send(rx, "/webhooks/twilio/sms", urlencode(params).encode(), headers))[
            0
        ] == 403
    # Signed over another URL than the configured public one (say, one the sender controls).
    signature = twilio_signature(
        TWILIO_TOKEN, "https://elsewhere.example/webhooks/twilio/sms", good
    )
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    assert (await send(rx, "/webhooks/twilio/sms", urlencode(good).encode(), headers))[0] == 403
    assert (await incident(rx, 1))["state"] == "triggered"


async def test_twilio_replay_changes_nothing_more(rx: Running) -> None:
    """Twilio requests carry no timestamp: a replayed reply must not change the outcome."""
    params = {"From": ALICE, "To": "+4930000000", "Body": "1 ack"}
    body, headers = urlencode(params).encode(), twilio_request(rx, params, params)
    first = await send(rx, "/webhooks/twilio/sms", body, headers)
    replay = await send(rx, "/webhooks/twilio/sms", body, headers)
    assert "acknowledged, thanks alice" in first[1]
    assert replay[0] == 200
    found = await incident(rx, 1)
    assert (found["state"], found["acked_by"]) == ("acknowledged", "alice")
    assert (await incident(rx, 2))["state"] == "triggered"


def slack_click(value: str) -> bytes:
    """Return a Slack block_actions body for a button value."""
    click = {
        "type": "block_actions",
        "user": {"username": "alice.a"},
        "actions": [{"value": value}],
    }
    return urlencode({"payload": json.dumps(click)}).encode()


async def test_slack_tampered_body_or_timestamp_is_refused(rx: Running) -> None:
    signed = slack_click("ack:1")
    headers = slack_headers(SLACK_SECRET, signed, T0)
    assert (await send(rx, "/webhooks/slack", slack_click("resolve:1"), headers))[0] == 401
    assert (await send(rx, "/webhooks/slack", slack_click("ack:2"), headers))[0] == 401
    moved = {**headers, "X-Slack-Request-Timestamp": str(int(T0) + 1)}
    assert (await send(rx, "/webhooks/slack", signed, moved))[0] == 401
    upper = {**headers, "X-Slack-Signature": headers["X-Slack-Signature"].upper()}
    assert (await send(rx, "/webhooks/slack", signed, upper))[0] == 401
    assert (await incident(rx, 1))["state"] == "triggered"
    assert (await incident(rx, 2))["state"] == "triggered"


async def test_slack_replay_is_idempotent_and_expires(rx: Running) -> None:
    body = slack_click("ack:1")
    headers = slack_headers(SLACK_SECRET, body, T0)
    assert (await send(rx, "/webhooks/slack", body, headers))[0] == 200
    status, text = await send(rx, "/webhooks/slack", body, headers)  # replay within 5 minutes
    assert (status, "Incident 1" in json.loads(text)["text"]) == (200, True)
    found = await incident(rx, 1)
    assert (found["state"], found["acked_by"]) == ("acknowledged", "alice")
    assert (await incident(rx, 2))["state"] == "triggered"
    rx.app[CLOCK].advance(5 * 60 + 1)  # type: ignore[attr-defined]
    assert (await send(rx, "/webhooks/slack", body, headers))[0] == 401  # the same bytes, later


def link(rx: Running, incident_id: int, action: str, person: str = "alice") -> str:
    """Return the path of a signed link made the way notifications make them."""
    maker = rx.app[WEB].maker
    assert maker is not None
    url = maker.url(incident_id, action, person, rx.app[CLOCK]())  # type: ignore[arg-type]
    return url.removeprefix(rx.config.external_url)


def reclaim(path: str, **changes: str) -> str:
    """Return the link with fields of its claim edited and the old signature kept."""
    head, signature = path.removeprefix("/ack/").split(".")
    fields = dict(
        zip(
            ("v", "incident", "action", "person", "expires", "nonce"),
            _unb64(head).decode().split("|"),
            strict=True,
        )
    )
    fields.update(changes)
    return f"/ack/{_b64('|'.join(fields.values()).encode())}.{signature}"


async def test_link_edited_for_another_incident_action_person_or_time_is_refused(
    rx: Running,
) -> None:
    path = link(rx, 1, "ack")
    for changes in (
        {"incident": "2"},
        {"action": "resolve"},
        {"person": "bob"},
        {"expires": str(int(T0) + 10 * 86400)},
        {"nonce": "fresh"},  # a new id would make a used link usable again
    ):
        status, text = await send(rx, reclaim(path, **changes))
        assert (status, "altered" in text) == (403, True), changes
    assert (await incident(rx, 1))["state"] == "triggered"
    assert (await incident(rx, 2))["state"] == "triggered"


async def test_link_acts_only_on_its_own_incident_and_action(rx: Running) -> None:
    assert (await send(rx, link(rx, 2, "ack", "bob")))[0] == 200
    assert ((await incident(rx, 1))["state"], (await incident(rx, 2))["state"]) == (
        "triggered",
        "acknowledged",
    )
    assert (await incident(rx, 2))["acked_by"] == "bob"  # the person in the link, not a choice


async def test_reused_and_expired_links_show_no_incident_data(rx: Running) -> None:
    path = link(rx, 1, "ack")
    assert (await send(rx, path))[0] == 200
    status, text = await send(rx, path)
    assert (status, "BackupTooOld" in text) == (409, False)
    late = link(rx, 1, "resolve")
    rx.app[CLOCK].advance(3601)  # type: ignore[attr-defined]
    async with rx.http.get(rx.url + late) as response:
        page = await response.text()
        assert (response.status, "BackupTooOld" in page) == (410, False)
    assert (await send(rx, late))[0] == 410
    assert (await incident(rx, 1))["state"] == "acknowledged"


async def test_mattermost_token_is_bound_to_incident_and_action(rx: Running) -> None:
    token = mattermost_context(rx.app[WEB].keys.mattermost, 1, "ack", T0)["token"]
    # Fields next to the token are not trusted: the signed claim decides.
    body = {"user_name": "alice.a", "context": {"token": token, "action": "resolve", "id": 2}}
    async with rx.http.post(f"{rx.url}/webhooks/mattermost", json=body) as response:
        assert response.status == 200
    assert (await incident(rx, 1))["state"] == "acknowledged"
    assert (await incident(rx, 2))["state"] == "triggered"
    edited = reclaim("/ack/" + token, incident="2").removeprefix("/ack/")
    async with rx.http.post(
        f"{rx.url}/webhooks/mattermost", json={"context": {"token": edited}}
    ) as response:
        assert response.status == 403
    assert (await incident(rx, 2))["state"] == "triggered"


async def test_session_cookie_cannot_be_edited_or_moved_between_sessions(rx: Running) -> None:
    cookie = await login_cookie(rx)
    value = cookie.removeprefix("mw_session=")
    who, expires, signature = value.split(".")
    as_bob = f"mw_session={base64.urlsafe_b64encode(b'bob').decode()}.{expires}.{signature}"
    longer = f"mw_session={who}.{int(expires) + 86400}.{signature}"
    for forged in (as_bob, longer):
        async with rx.http.get(
            f"{rx.url}/", headers={"Cookie": forged}, allow_redirects=False
        ) as response:
            assert response.status == 303
    # A CSRF token belongs to its session: another login's token is refused.
    rx.app[CLOCK].advance(1)  # type: ignore[attr-defined]  # sessions differ by their expiry
    other = await login_cookie(rx, API_TOKEN)
    assert other != cookie
    async with rx.http.get(f"{rx.url}/", headers={"Cookie": other}) as response:
        found = re.search(r'name="csrf" value="([^"]+)"', await response.text())
    assert found is not None
    form = urlencode({"csrf": found.group(1), "back": "/"}).encode()
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    assert (await send(rx, "/incidents/1/ack", form, headers))[0] == 403
    assert (await incident(rx, 1))["state"] == "triggered"
