"""The incidents page: login, session cookie, CSRF-checked buttons, escaping, CSP."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.receiver._ack_helpers import API_TOKEN, PASSWORD, ack_config, incident, serve
from tests.receiver._helpers import (
    T0,
    FakeClock,
    Running,
    Script,
    alert,
    fixture_bytes,
    payload,
    store_yaml,
)

HOSTILE = '<script>window.__pwned=1</script>"><img src=x onerror=alert(1)>'


@pytest.fixture
async def rx(script: Script, tmp_path: Path) -> AsyncIterator[Running]:
    """Serve a receiver with incident 1 (fixture) and 2 (a hostile label and runbook)."""
    port = free_port()
    text = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), f"http://127.0.0.1:{port}")
    async with serve(text, FakeClock(T0 + 3600), port) as running:
        assert (await running.post(fixture_bytes("firing-single.json"))).status == 200
        hostile = alert("ff01", evil=HOSTILE)
        hostile["annotations"]["runbook_url"] = "javascript:alert(1)"
        body = payload(hostile, group='{}:{alertname="Evil"}', evil=HOSTILE)
        assert (await running.post(body)).status == 200
        yield running


async def login(rx: Running, name: str = "alice", password: str = PASSWORD) -> str:
    """Log in; return the session cookie header value."""
    async with rx.http.post(
        f"{rx.url}/login",
        data={"name": name, "password": password, "next": "/"},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()
        cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    return cookie.split(";", 1)[0]


async def fetch(rx: Running, path: str, cookie: str = "") -> tuple[int, str, dict[str, str]]:
    """GET a page with a session cookie."""
    headers = {"Cookie": cookie} if cookie else {}
    async with rx.http.get(f"{rx.url}{path}", headers=headers, allow_redirects=False) as r:
        return r.status, await r.text(), dict(r.headers)


async def post(rx: Running, path: str, cookie: str, **form: str) -> tuple[int, str, str]:
    """POST a form with a session cookie; return status, body and Location."""
    async with rx.http.post(
        f"{rx.url}{path}", data=form, headers={"Cookie": cookie}, allow_redirects=False
    ) as r:
        return r.status, await r.text(), r.headers.get("Location", "")


def csrf_of(page: str) -> str:
    """Return the CSRF token embedded in a page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_page_needs_login(rx: Running) -> None:
    status, _, headers = await fetch(rx, "/")
    assert status == 303
    assert headers["Location"] == "/login?next=/"
    status, text, _ = await post(rx, "/login", "", name="alice", password="wrong")
    assert status == 401
    assert "Wrong name or password" in text
    forged = "mw_session=YWxpY2U.9999999999.forged"
    assert (await fetch(rx, "/", forged))[0] == 303


async def test_api_token_logs_in(rx: Running) -> None:
    cookie = await login(rx, "", API_TOKEN)
    status, text, _ = await fetch(rx, "/", cookie)
    assert status == 200
    assert "logged in as api-token" in text


async def test_session_expires(rx: Running) -> None:
    cookie = await login(rx)
    from receiver.appkeys import CLOCK

    rx.app[CLOCK].advance(13 * 3600)  # type: ignore[attr-defined]
    assert (await fetch(rx, "/", cookie))[0] == 303


async def test_list_escapes_labels_and_sets_csp(rx: Running) -> None:
    cookie = await login(rx)
    status, text, headers = await fetch(rx, "/", cookie)
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src" not in csp  # no script may run at all
    assert "'unsafe-inline'" not in csp
    assert "<script>" not in text
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in text
    assert "javascript:" not in text
    assert "BackupTooOld" in text
    assert 'href="https://example.invalid/runbooks/backup-too-old"' in text
    assert 'href="http://vm:19090/graph?g0.expr=' in text
    assert "alice" in text  # who is paged (route ops)
    assert "Open incidents (2)" in text


async def test_buttons_need_csrf(rx: Running) -> None:
    cookie = await login(rx)
    status, _, _ = await post(rx, "/incidents/1/ack", cookie, csrf="nope", back="/")
    assert status == 403
    assert (await incident(rx, 1))["state"] == "triggered"
    status, _, _ = await post(rx, "/incidents/1/ack", "", csrf="x")
    assert status == 401
    page = (await fetch(rx, "/", cookie))[1]
    status, _, location = await post(
        rx, "/incidents/1/ack", cookie, csrf=csrf_of(page), back="//evil.example/"
    )
    assert (status, location) == (303, "/")  # no open redirect
    found = await incident(rx, 1)
    assert (found["state"], found["acked_by"]) == ("acknowledged", "alice")
    status, _, location = await post(
        rx, "/incidents/1/resolve", cookie, csrf=csrf_of(page), back="/incidents/1"
    )
    assert (status, location) == (303, "/incidents/1")
    assert (await incident(rx, 1))["state"] == "resolved"
    status, _text, _ = await post(rx, "/incidents/1/ack", cookie, csrf=csrf_of(page))
    assert status == 409
    assert (await post(rx, "/incidents/99/ack", cookie, csrf=csrf_of(page)))[0] == 404


async def test_incident_page_shows_timeline(rx: Running) -> None:
    cookie = await login(rx)
    page = (await fetch(rx, "/", cookie))[1]
    await post(rx, "/incidents/1/ack", cookie, csrf=csrf_of(page))
    status, text, _ = await fetch(rx, "/incidents/1", cookie)
    assert status == 200
    assert 'id="state">acknowledged' in text
    timeline = text.split('id="timeline"')[1]
    assert "alice" in timeline
    assert (await fetch(rx, "/incidents/2", cookie))[1].count("&lt;script&gt;") >= 1
    assert (await fetch(rx, "/incidents/404", cookie))[0] == 404
