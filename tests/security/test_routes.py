"""Every route of the real app, without and with wrong credentials: refused, nothing changes.

The table below must name every route `app.router.routes()` holds: a new route without an entry
fails `test_every_route_has_a_guard`, so nobody adds an endpoint without deciding how it is
protected. Public routes carry the reason they need no credentials.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from receiver.ack.links import derive, mac, mattermost_context
from receiver.appkeys import STORE
from receiver.web.auth import session_value
from receiver.web.state import WEB, Keys
from tests.receiver._ack_helpers import API_TOKEN, SLACK_SECRET, TWILIO_TOKEN, incident, serve
from tests.receiver._helpers import T0, FakeClock, Running, fixture_bytes, register_script
from tests.security._security_helpers import (
    WEBHOOK_TOKEN,
    link_token,
    served,
    slack_headers,
    twilio_signature,
)

ATTACKER_SECRET = b"an-attacker-guess"
Attempt = tuple[dict[str, str], bytes]  # headers, body


@dataclass(frozen=True)
class Guard:
    """How a route authenticates: a scheme, the statuses it refuses with, or why it is public."""

    scheme: str
    refused: frozenset[int] = frozenset()
    public_because: str = ""
    answers: int = 200  # what a public route answers anyone


def guard(scheme: str, *statuses: int) -> Guard:
    """Return a protected route's guard."""
    return Guard(scheme, frozenset(statuses))


def public(reason: str, answers: int = 200) -> Guard:
    """Return a public route's entry with the reason it needs no credentials."""
    return Guard("public", public_because=reason, answers=answers)


WEBHOOK = guard("webhook", 401)
API = guard("api", 401)
PAGE_GET = guard("session", 303)  # to the login page
PAGE_POST = guard("session", 401)
LINK = guard("link", 400, 403)  # malformed 400, forged 403
READ_ONLY = "answers the same to everyone and holds no incident data"

ROUTES: dict[tuple[str, str], Guard] = {
    ("POST", "/webhooks/alertmanager"): WEBHOOK,
    **{
        (m, "/metrics"): public("Prometheus scrapes it; counts by fixed labels only")
        for m in ("GET", "HEAD")
    },
    **{(m, "/-/healthy"): public(f"liveness probe; {READ_ONLY}") for m in ("GET", "HEAD")},
    **{(m, "/-/ready"): public(f"readiness probe; {READ_ONLY}") for m in ("GET", "HEAD")},
    **{(m, "/api/openapi.yaml"): public(f"API description; {READ_ONLY}") for m in ("GET", "HEAD")},
    **{
        (m, "/docs/runbooks/"): public(f"the project's runbooks; {READ_ONLY}")
        for m in ("GET", "HEAD")
    },
    # PARAMS names no runbook: everyone gets the same 404.
    **{
        (m, "/docs/runbooks/{name}.md"): public(f"one runbook; {READ_ONLY}", 404)
        for m in ("GET", "HEAD")
    },
    **{(m, "/api/v1/incidents"): API for m in ("GET", "HEAD")},
    **{(m, "/api/v1/incidents/{id}"): API for m in ("GET", "HEAD")},
    **{("POST", f"/api/v1/incidents/{{id}}/{verb}"): API for verb in ("ack", "unack", "resolve")},
    **{(m, "/api/v1/oncall"): API for m in ("GET", "HEAD")},
    **{(m, "/api/v1/schedules/{name}.ics"): API for m in ("GET", "HEAD")},
    **{(m, "/"): PAGE_GET for m in ("GET", "HEAD")},
    **{(m, "/login"): public("the login form itself; it shows no data") for m in ("GET", "HEAD")},
    ("POST", "/login"): guard("login", 401),
    ("POST", "/logout"): public("only deletes the caller's own cookie (SameSite=Strict)", 303),
    **{(m, "/incidents/{id}"): PAGE_GET for m in ("GET", "HEAD")},
    ("POST", "/incidents/{id}/{verb}"): PAGE_POST,
    **{(m, "/ack/{token}"): LINK for m in ("GET", "HEAD", "POST")},
    ("POST", "/webhooks/twilio/sms"): guard("twilio", 403),
    ("POST", "/webhooks/slack"): guard("slack", 401),
    ("POST", "/webhooks/mattermost"): guard("mattermost", 400, 403),
}
PARAMS = {"{id}": "1", "{verb}": "ack", "{name}": "primary"}


@pytest.fixture
async def rx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Running]:
    """Serve the fully configured receiver with incident 1 open."""
    async with served(monkeypatch, tmp_path) as running:
        response = await running.post(fixture_bytes("firing-single.json"), token=WEBHOOK_TOKEN)
        assert response.status == 200
        yield running


def _forged_cookie(now: float) -> str:
    """Return a well-formed session cookie for alice signed with a key the receiver lacks."""
    body = f"{base64.urlsafe_b64encode(b'alice').decode()}.{int(now + 3600)}"
    return f"mw_session={body}.{mac(Keys.from_secret(ATTACKER_SECRET.decode()).session, body)}"


def _twilio(rx: Running, token: str | None) -> Attempt:
    params = {"From": "+4915100000001", "To": "+4930000000", "Body": "1 ack"}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token is not None:
        url = f"{rx.config.external_url}/webhooks/twilio/sms"
        headers["X-Twilio-Signature"] = twilio_signature(token, url, params)
    return headers, urlencode(params).encode()


def _slack(secret: str | None) -> Attempt:
    click = {
        "type": "block_actions",
        "user": {"username": "alice.a"},
        "actions": [{"value": "ack:1"}],
    }
    body = urlencode({"payload": json.dumps(click)}).encode()
    if secret is None:
        return {"Content-Type": "application/x-www-form-urlencoded"}, body
    return slack_headers(secret, body, T0), body


def _mattermost(key: bytes | None) -> Attempt:
    context = mattermost_context(key, 1, "ack", T0) if key else {}
    body = json.dumps({"user_name": "alice.a", "context": context}).encode()
    return {"Content-Type": "application/json"}, body


def attempts(rx: Running, scheme: str) -> dict[str, Attempt]:
    """Return the requests without and with wrong credentials for an auth scheme."""
    payload = fixture_bytes("firing-group.json")  # would open a second incident if accepted
    login = urlencode({"name": "alice", "password": "guess", "next": "/"}).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    table: dict[str, dict[str, Attempt]] = {
        "webhook": {
            "none": ({}, payload),
            "wrong bearer": ({"Authorization": "Bearer guess"}, payload),
            "API token": ({"Authorization": f"Bearer {API_TOKEN}"}, payload),
            "basic": ({"Authorization": "Basic YWxpY2U6Z3Vlc3M="}, payload),
        },
        "api": {
            "none": ({}, b""),
            "wrong bearer": ({"Authorization": "Bearer guess"}, b""),
            "webhook token": ({"Authorization": f"Bearer {WEBHOOK_TOKEN}"}, b""),
            "token as basic": ({"Authorization": f"Basic {API_TOKEN}"}, b""),
        },
        "session": {
            "none": (form, b"csrf=x"),
            "forged cookie": ({**form, "Cookie": _forged_cookie(T0)}, b"csrf=x"),
            "API token as cookie": ({**form, "Cookie": f"mw_session={API_TOKEN}"}, b"csrf=x"),
        },
        "login": {"none": (form, b""), "wrong password": (form, login)},
        "twilio": {"none": _twilio(rx, None), "wrong token": _twilio(rx, "guess")},
        "slack": {"none": _slack(None), "wrong secret": _slack("guess")},
        "mattermost": {
            "none": _mattermost(None),
            "forged": _mattermost(derive(ATTACKER_SECRET, "mattermost")),
        },
        "link": {"none": ({}, b""), "forged": ({}, b"")},  # the token is in the path
        "public": {"none": ({}, b"")},
    }
    return table[scheme]


def path_for(canonical: str, scheme: str, attempt: str) -> str:
    """Fill a route's path parameters; a link route gets a malformed or a forged token."""
    path = canonical
    for name, value in PARAMS.items():
        path = path.replace(name, value)
    if "{token}" in path:
        token = (
            "not-a-token" if attempt == "none" else link_token(ATTACKER_SECRET, 1, "ack", T0 + 60)
        )
        path = path.replace("{token}", token)
    return path


def test_every_route_has_a_guard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from receiver.app import make_app
    from receiver.config import load_config_text
    from tests.receiver._ack_helpers import recording_logger
    from tests.security._security_helpers import sweep_config

    register_script(monkeypatch)
    app = make_app(load_config_text(sweep_config(tmp_path, "http://x")), recording_logger())
    served_routes = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource}
    missing = sorted(served_routes - set(ROUTES))
    stale = sorted(set(ROUTES) - served_routes)
    assert not missing, (
        f"routes without an entry in ROUTES (decide how they authenticate): {missing}"
    )
    assert not stale, f"ROUTES entries the app no longer serves: {stale}"
    assert all(g.refused or g.public_because for g in ROUTES.values())


Send = Callable[[str, str, dict[str, str], bytes], Awaitable[tuple[int, str]]]


def sender(rx: Running) -> Send:
    """Return a function sending one raw request (no redirects followed)."""

    async def send(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        async with rx.http.request(
            method, rx.url + path, headers=headers, data=body or None, allow_redirects=False
        ) as response:
            text = await response.text()
            if response.status == 303:  # only the login redirect counts as a refusal
                text = response.headers["Location"] + "\n" + text
            return response.status, text

    return send


async def test_sweep_refuses_every_protected_route(rx: Running) -> None:
    send = sender(rx)
    failures = []
    for (method, canonical), entry in sorted(ROUTES.items()):
        for name, (headers, body) in attempts(rx, entry.scheme).items():
            path = path_for(canonical, entry.scheme, name)
            status, text = await send(method, path, headers, body)
            expected = entry.refused or {entry.answers}
            if status not in expected:
                failures.append(f"{method} {path} ({name}): {status}, expected {sorted(expected)}")
            if entry.refused and status == 303 and not text.startswith("/login?next="):
                failures.append(f"{method} {path} ({name}): redirected elsewhere: {text}")
            if entry.refused and "BackupTooOld" in text:
                failures.append(f"{method} {path} ({name}): refused answer shows incident data")
    assert not failures, "\n".join(failures)
    # Nothing an unauthenticated request could do happened.
    found = await incident(rx, 1)
    assert (found["state"], found["acked_by"]) == ("triggered", None)
    assert len(await rx.app[STORE].incidents(None, {}, 10)) == 1


async def test_without_a_token_the_api_and_inbound_webhooks_are_not_served(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    register_script(monkeypatch)
    text = "channels: [{name: chat, type: script}]\ndefault_route: {channels: [chat]}\n"
    text += f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
    async with serve(text, FakeClock(T0)) as rx:
        send = sender(rx)
        for path in ("/api/v1/incidents", "/api/v1/oncall"):
            assert (await send("GET", path, {}, b""))[0] == 404
        for path in ("/webhooks/twilio/sms", "/webhooks/slack", "/webhooks/mattermost"):
            assert (await send("POST", path, {}, b"x"))[0] == 404
        # No links secret: the link route exists (old links) but refuses everything.
        token = link_token(b"any", 1, "ack", T0 + 60)
        status, body = await send("POST", f"/ack/{token}", {}, b"")
        assert (status, "not enabled" in body) == (404, True)
        # No web users and no API token: nobody can log in, whatever they send.
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert (await send("POST", "/login", form, b"name=&password="))[0] == 401


async def test_secrets_from_one_purpose_never_open_another(rx: Running) -> None:
    """The links secret's derived keys do not cross: a Mattermost token is not a link."""
    keys = rx.app[WEB].keys
    send = sender(rx)
    mm_token = mattermost_context(keys.mattermost, 1, "ack", T0)["token"]
    assert (await send("POST", f"/ack/{mm_token}", {}, b""))[0] == 403
    session = session_value(rx.app[WEB], "alice", int(T0 + 3600))
    assert (await send("POST", f"/ack/{session}", {}, b""))[0] in (400, 403)
    headers, body = _slack(TWILIO_TOKEN)
    assert (await send("POST", "/webhooks/slack", headers, body))[0] == 401
    headers, body = _twilio(rx, SLACK_SECRET)
    assert (await send("POST", "/webhooks/twilio/sms", headers, body))[0] == 403
    assert (await incident(rx, 1))["state"] == "triggered"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",  # URL parsers drop tabs and newlines: this would be //evil.example
        "/\n/evil.example/",
        "/\r\n/evil.example/",
        "https://evil.example/",
        " //evil.example/",
    ],
)
async def test_login_and_buttons_never_redirect_off_site(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str
) -> None:
    async with served(monkeypatch, tmp_path) as rx:
        form = {"name": "alice", "password": "correct horse", "next": target}
        async with rx.http.post(f"{rx.url}/login", data=form, allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (303, "/")
            cookie = response.headers["Set-Cookie"].split(";", 1)[0]
        async with rx.http.get(f"{rx.url}/login", params={"next": target}) as response:
            assert 'name="next" value="/"' in await response.text()
        assert (
            await rx.post(fixture_bytes("firing-single.json"), token=WEBHOOK_TOKEN)
        ).status == 200
        async with rx.http.get(f"{rx.url}/", headers={"Cookie": cookie}) as response:
            found = re.search(r'name="csrf" value="([^"]+)"', await response.text())
        assert found is not None
        async with rx.http.post(
            f"{rx.url}/incidents/1/ack",
            data={"csrf": found.group(1), "back": target},
            headers={"Cookie": cookie},
            allow_redirects=False,
        ) as response:
            assert (response.status, response.headers["Location"]) == (303, "/")
