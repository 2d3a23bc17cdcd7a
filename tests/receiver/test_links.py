"""Signed links: token rules (pure) and the confirm page that acts only on POST, once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receiver.ack.links import Claim, LinkError, LinkMaker, derive, sign, verify
from receiver.appkeys import CLOCK, WORKER
from receiver.delivery.notify import notification
from receiver.web.state import WEB
from tests.conftest import free_port
from tests.receiver._ack_helpers import SECRET, ack_config, incident, serve
from tests.receiver._helpers import (
    T0,
    FakeClock,
    Running,
    Script,
    fixture_bytes,
    store_dsn,
    store_yaml,
)

KEY = derive(SECRET.encode(), "links")


def claim(**changes: object) -> Claim:
    """Return a claim for incident 7, valid for an hour after T0."""
    fields: dict[str, object] = {
        "incident_id": 7,
        "action": "ack",
        "person": "alice",
        "expires_at": int(T0 + 3600),
        "nonce": "n1",
    }
    fields.update(changes)
    return Claim(**fields)  # type: ignore[arg-type]


def test_round_trip() -> None:
    assert verify(KEY, sign(KEY, claim()), T0) == claim()


@pytest.mark.parametrize(
    ("mangle", "status"),
    [
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), 403),  # signature edited
        (lambda t: sign(derive(b"other", "links"), claim()), 403),  # another secret
        (lambda t: "nodot", 400),
        (lambda t: "!!!.abc", 400),
        (lambda t: sign(derive(SECRET.encode(), "mattermost"), claim()), 403),  # other purpose
    ],
)
def test_tampered_tokens_are_refused(mangle: object, status: int) -> None:
    token = mangle(sign(KEY, claim()))  # type: ignore[operator]
    with pytest.raises(LinkError) as caught:
        verify(KEY, token, T0)
    assert caught.value.status == status


def test_claim_edited_with_old_signature_is_refused() -> None:
    head, _, sig = sign(KEY, claim()).partition(".")
    other_head, _, _ = sign(KEY, claim(incident_id=8)).partition(".")
    with pytest.raises(LinkError) as caught:
        verify(KEY, f"{other_head}.{sig}", T0)
    assert caught.value.status == 403
    assert head != other_head


def test_expired() -> None:
    token = sign(KEY, claim())
    with pytest.raises(LinkError) as caught:
        verify(KEY, token, T0 + 3600)
    assert caught.value.status == 410


def test_maker_binds_incident_person_action() -> None:
    maker = LinkMaker(KEY, "https://pager.example/base/", 600)
    ack, resolve = maker.urls(12, "bob", T0)
    assert ack.startswith("https://pager.example/base/ack/")
    got = verify(KEY, ack.rsplit("/", 1)[1], T0)
    assert (got.incident_id, got.action, got.person, got.expires_at) == (12, "ack", "bob", T0 + 600)
    assert verify(KEY, resolve.rsplit("/", 1)[1], T0).action == "resolve"
    assert got.nonce != verify(KEY, resolve.rsplit("/", 1)[1], T0).nonce


@pytest.fixture(params=["sqlite", "postgres"])
async def rx(
    request: pytest.FixtureRequest, script: Script, tmp_path: Path, unique: str
) -> AsyncIterator[Running]:
    """Serve a receiver on each store backend with one incident open (id 1)."""
    port = free_port()
    async with store_dsn(request.param, unique) as dsn:
        text = ack_config(
            tmp_path, store_yaml(request.param, tmp_path, dsn), f"http://127.0.0.1:{port}"
        )
        async with serve(text, FakeClock(T0), port) as running:
            response = await running.post(fixture_bytes("firing-single.json"))
            assert response.status == 200
            yield running


def link(rx: Running, action: str = "ack", person: str = "alice") -> str:
    """Return a signed link to incident 1 made the way notifications make them."""
    maker = rx.app[WEB].maker
    assert maker is not None
    return maker.url(1, action, person, T0)  # type: ignore[arg-type]


async def get(rx: Running, url: str, method: str = "GET") -> tuple[int, str, dict[str, str]]:
    """Fetch a page."""
    async with rx.http.request(method, url, allow_redirects=False) as response:
        return response.status, await response.text(), dict(response.headers)


async def test_get_shows_confirm_page_and_changes_nothing(rx: Running) -> None:
    url = link(rx)
    assert url.startswith(rx.url + "/ack/")
    for _ in range(2):  # a mail scanner prefetching twice
        status, text, headers = await get(rx, url)
        assert status == 200
        assert "Acknowledge incident #1?" in text
        assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert (await incident(rx, 1))["state"] == "triggered"


async def test_post_acts_once(rx: Running) -> None:
    url = link(rx)
    status, text, _ = await get(rx, url, "POST")
    assert status == 200
    assert "Incident 1 is acknowledged." in text
    found = await incident(rx, 1)
    assert (found["state"], found["acked_by"]) == ("acknowledged", "alice")
    status, text, _ = await get(rx, url, "POST")
    assert status == 409
    assert "used already" in text


async def test_resolve_link(rx: Running) -> None:
    status, _, _ = await get(rx, link(rx, "resolve", "bob"), "POST")
    assert status == 200
    found = await incident(rx, 1)
    assert (found["state"], found["resolved_by"]) == ("resolved", "bob")
    # A second, unused ack link for the resolved incident is refused without a change.
    status, _text, _ = await get(rx, link(rx), "POST")
    assert status == 409
    assert (await incident(rx, 1))["state"] == "resolved"


async def test_tampered_and_expired_links_change_nothing(rx: Running) -> None:
    url = link(rx)
    forged = url[:-3] + ("xyz" if not url.endswith("xyz") else "abc")
    status, text, _ = await get(rx, forged, "POST")
    assert status == 403
    assert "altered" in text
    fake = rx.app[CLOCK]
    assert isinstance(fake, FakeClock)
    fake.advance(3600)
    status, text, _ = await get(rx, url, "POST")
    assert status == 410
    assert (await incident(rx, 1))["state"] == "triggered"
    status, _, _ = await get(rx, f"{rx.url}/ack/{'A' * 600}")
    assert status == 400


async def test_notifications_carry_links_and_reply_code(rx: Running) -> None:
    fields = rx.app[WEB].link_fields(lambda: T0)
    body = {
        "kind": "firing",
        "incident_status": "triggered",
        "severity": "critical",
        "title": "t",
        "group_labels": {},
        "common_labels": {},
        "common_annotations": {},
        "alerts": [],
        "truncated_alerts": 0,
        "external_url": "",
        "incident_url": "",
    }
    made = notification(5, 1, body, None, links=fields)
    assert made.reply_code == "1"
    assert made.ack_url.startswith(rx.url + "/ack/")
    status, _, _ = await get(rx, made.ack_url, "POST")
    assert status == 200
    resolved = notification(6, 1, {**body, "kind": "resolved"}, None, links=fields)
    assert (resolved.ack_url, resolved.reply_code) == ("", "")


async def test_delivered_page_carries_a_working_link(rx: Running, script: Script) -> None:
    await rx.app[WORKER].run_once()
    (page,) = script.sent["chat"]
    assert page.reply_code == "1"
    assert page.ack_url.startswith(rx.url + "/ack/")
    status, _, _ = await get(rx, page.ack_url, "POST")
    assert status == 200
    assert (await incident(rx, 1))["state"] == "acknowledged"
