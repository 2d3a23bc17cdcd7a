"""The incidents page as on-call reads it: order, state lines, who was paged, the timeline the
API shows, capped lists and paged alerts, how to log in, bidi text isolated, no graph stall."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from receiver.appkeys import WORKER
from receiver.web.views import page_link
from tests.conftest import free_port
from tests.receiver._ack_helpers import API_TOKEN, ack_config, serve
from tests.receiver._helpers import (
    Running,
    Script,
    alert,
    payload,
    store_dsn,
    store_yaml,
)
from tests.receiver.test_web import fetch, login

SPOOF = "db\u202egnp.exe"


def _iso(seconds_ago: float) -> str:
    moment = datetime.fromtimestamp(time.time() - seconds_ago, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def one(fp: str, name: str, severity: str, ago: float, **labels: str) -> dict[str, Any]:
    """Return a one-alert payload of its own group, started `ago` seconds ago."""
    a = alert(fp, starts=_iso(ago), alertname=name, severity=severity, **labels)
    a["annotations"]["description"] = f"{name} value is 42, above 10"
    a["annotations"]["runbook_url"] = f"docs/runbooks/{name}.md"
    body = payload(a, group=f'{{}}:{{alertname="{name}"}}', severity=severity, **labels)
    body["groupLabels"] = {"alertname": name}
    body["commonLabels"]["alertname"] = name
    return body


async def _serve(
    tmp_path: Path, web_extra: str = "", kind: str = "sqlite", unique: str = ""
) -> AsyncIterator[Running]:
    port = free_port()
    async with store_dsn(kind, unique) as dsn:
        store = store_yaml(kind, tmp_path, dsn)
        text = ack_config(tmp_path, store, f"http://127.0.0.1:{port}")
        if web_extra:
            text = text.replace("secure_cookies: false", f"secure_cookies: false, {web_extra}", 1)
        async with serve(text, port=port) as running:
            yield running


@pytest.fixture
async def rx(script: Script, tmp_path: Path) -> AsyncIterator[Running]:
    """Serve a receiver (links, a web user, an API token; SQLite)."""
    async for running in _serve(tmp_path):
        yield running


async def api(rx: Running, method: str, path: str) -> Any:
    """Call the JSON API with the token."""
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    async with rx.http.request(method, f"{rx.url}{path}", headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def card_ids(page: str, section: str) -> list[int]:
    """Return the incident ids of one section of the list, in page order."""
    part = page.split("<h2>Recently resolved", 1)[0 if section == "open" else 1]
    return [
        int(i) for i in re.findall(r'<section class="incident [^"]*" id="incident-(\d+)"', part)
    ]


async def test_list_orders_by_state_severity_age_and_tells_who_was_paged(rx: Running) -> None:
    bodies = [
        one("a1", "QueueBacklogHigh", "warning", 600, team="ops"),
        one("b1", "BackupTooOld", "critical", 300),
        one("c1", "TLSCertificateExpiringSoon", "critical", 900, team="ops"),
        one("d1", "EndpointDown", "critical", 1200),
        one("e1", "HealthCheckFailing", "critical", 60),
    ]
    for body in bodies:
        assert (await rx.post(body)).status == 200
    await rx.app[WORKER].run_once()
    await api(rx, "POST", "/api/v1/incidents/3/ack")
    resolved = one("d1", "EndpointDown", "critical", 1200)
    resolved["alerts"][0].update(status="resolved", endsAt=_iso(0))
    resolved["status"] = "resolved"
    assert (await rx.post(resolved)).status == 200
    cookie = await login(rx)
    status, page, _ = await fetch(rx, "/", cookie)
    assert status == 200
    # Triggered before acknowledged; critical before warning; newest first within.
    assert card_ids(page, "open") == [5, 2, 1, 3]
    assert card_ids(page, "done") == [4]
    assert '<meta http-equiv="refresh" content="60">' in page
    assert "paged: Alice via chat" in page  # the configured name, not the id
    assert re.search(r"acknowledged by api \S+ ago", page)
    done = page.split("Recently resolved", 1)[1]
    assert re.search(r"resolved by Alertmanager after \S+", done), re.findall(
        "resolved by [^<]*", done
    )
    assert "QueueBacklogHigh value is 42, above 10" in page
    assert 'href="/docs/runbooks/QueueBacklogHigh.md"' in page
    assert "[firing]" not in page


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_big_incident_is_capped_on_the_list_and_paged_on_its_page(
    script: Script, tmp_path: Path, unique: str, kind: str
) -> None:
    async for rx in _serve(tmp_path, kind=kind, unique=unique):
        await _big_incident(rx)


async def _big_incident(rx: Running) -> None:
    alerts = [alert(f"f{n:04d}", starts=_iso(600 + n), backup=f"set{n:04d}") for n in range(120)]
    assert (await rx.post(payload(*alerts))).status == 200
    cookie = await login(rx)
    _, page, _ = await fetch(rx, "/", cookie)
    assert page.count('<li class="alert ') == 5
    assert "115 more alerts" in page
    _, first, _ = await fetch(rx, "/incidents/1", cookie)
    assert first.count('<li class="alert ') == 50
    assert "Alerts 1–50 of 120" in first
    assert ">70 more</a>" in first
    _, last, _ = await fetch(rx, "/incidents/1?page=3", cookie)
    assert last.count('<li class="alert ') == 20
    assert "Alerts 101–120 of 120" in last
    # Newest first: page 1 starts with the alert that started last.
    assert first.index("backup=set0000") < first.index("backup=set0049")


async def test_timeline_shows_what_the_api_shows(rx: Running) -> None:
    assert (await rx.post(one("t1", "BackupTooOld", "critical", 120, team="ops"))).status == 200
    await rx.app[WORKER].run_once()
    await api(rx, "POST", "/api/v1/incidents/1/ack")
    await api(rx, "POST", "/api/v1/incidents/1/resolve")
    events = (await api(rx, "GET", "/api/v1/incidents/1"))["events"]
    cookie = await login(rx)
    _, page, _ = await fetch(rx, "/incidents/1", cookie)
    timeline = page.split('id="timeline"', 1)[1]
    assert "<strong>opened</strong>" in timeline
    assert any(e["kind"] == "delivery" for e in events)
    for event in events:
        assert f"<strong>{event['kind']}</strong>" in timeline
        if event["detail"]:
            assert event["detail"].replace(">", "&gt;") in timeline
    assert "resolved by api after" in page
    assert "No events recorded" not in page


async def test_login_page_says_how_to_log_in(rx: Running) -> None:
    _, page, _ = await fetch(rx, "/login")
    how = page.split('id="how"', 1)[1]
    assert "web.users" in how
    assert "API token" in how


async def test_bidi_controls_in_labels_are_isolated_on_the_page(rx: Running) -> None:
    body = one("s1", "BackupTooOld", "critical", 60, backup=SPOOF)
    assert (await rx.post(body)).status == 200
    cookie = await login(rx)
    for path in ("/", "/incidents/1"):
        _, page, _ = await fetch(rx, path, cookie)
        assert f"<bdi>backup={SPOOF}</bdi>" in page


async def _hanging(request: web.Request) -> web.StreamResponse:
    await asyncio.sleep(60)
    return web.Response()


@asynccontextmanager
async def _prometheus(answers: bool) -> AsyncIterator[str]:
    """Yield the URL of a Prometheus that hangs (`answers`) or of a closed port."""
    app = web.Application()
    app.router.add_get("/api/v1/query_range", _hanging)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    if answers:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("hangs", "note"),
    [
        (False, "No graph: Prometheus cannot be reached (ClientConnectorError)."),
        (True, "No graph: Prometheus did not answer within 1s."),
    ],
)
async def test_prometheus_away_costs_one_line_not_the_page(
    script: Script, tmp_path: Path, hangs: bool, note: str
) -> None:
    async with _prometheus(hangs) as prometheus:
        async for rx in _serve(tmp_path, "graphs: {timeout: 1s}"):
            body = one("g1", "BackupTooOld", "critical", 600)
            body["alerts"][0]["generatorURL"] = f"{prometheus}/graph?g0.expr=up+%3E+0"
            assert (await rx.post(body)).status == 200
            cookie = await login(rx)
            status, page, _ = await fetch(rx, "/incidents/1", cookie)
            assert status == 200
            assert f'<p class="note">{note}</p>' in page
            assert "BackupTooOld value is 42, above 10" in page


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("docs/runbooks/BackupTooOld.md", "/docs/runbooks/BackupTooOld.md"),
        ("/docs/runbooks/BackupTooOld.md#fix", "/docs/runbooks/BackupTooOld.md#fix"),
        ("https://wiki.example/BackupTooOld", "https://wiki.example/BackupTooOld"),
        ("//evil.example/x", ""),
        ("\\\\evil.example", ""),  # browsers read a backslash as a slash
        ("/\\evil.example", ""),
        ("javascript:alert(1)", ""),
        ("docs/a b.md", ""),
    ],
)
def test_page_links_stay_on_this_receiver_or_http(given: str, shown: str) -> None:
    assert page_link(given) == shown
