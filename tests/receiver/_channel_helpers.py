"""Channel test helpers: a notification factory and a local HTTP server recording requests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web

from receiver.delivery.channels import REGISTRY
from receiver.delivery.channels.base import AlertView, ChannelContext, Notification, Recipient
from receiver.delivery.templates import TemplateBlocks
from tests.conftest import free_port

HOSTILE = '<script>alert("x")</script> & Ünïcødé ✓'
"""A label value with HTML and non-ASCII text, used everywhere to check escaping."""

NOW = datetime(2026, 11, 22, 14, 0, tzinfo=UTC).timestamp()


def blocks(kind: str) -> TemplateBlocks:
    """Return the template blocks the channel of this `type` declares."""
    return REGISTRY[kind].config_type.blocks


def make_alert(index: int = 0, **overrides: Any) -> AlertView:
    """Return a firing alert; keyword arguments replace fields."""
    alert = AlertView(
        fingerprint=f"fp{index:04d}",
        status="firing",
        labels={
            "alertname": "BackupTooOld",
            "severity": "critical",
            "backup": f"db{index}",
            "team": "ops",
        },
        annotations={
            "summary": f"Backup db{index} is 30h old",
            "runbook_url": "https://runbooks.example/BackupTooOld",
        },
        starts_at=datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
        ends_at=None,
        generator_url="http://prometheus:9090/graph?g0.expr=up",
    )
    return replace(alert, **overrides)


def make_notification(count: int = 1, **overrides: Any) -> Notification:
    """Return a firing critical notification with `count` alerts; keywords replace fields."""
    alerts = tuple(make_alert(i) for i in range(count))
    notification = Notification(
        id="out-42",
        kind="firing",
        incident_id=12,
        incident_status="triggered",
        severity="critical",
        title=f"[FIRING:{count}] BackupTooOld (ops)",
        group_labels={"alertname": "BackupTooOld"},
        common_labels={"alertname": "BackupTooOld", "severity": "critical", "team": "ops"},
        common_annotations={"runbook_url": "https://runbooks.example/BackupTooOld"},
        alerts=alerts,
        external_url="http://alertmanager:9093",
        incident_url="https://pager.example/incidents/12",
        ack_url="https://pager.example/ack/tok12",
        resolve_url="https://pager.example/ack/res12",
        reply_code="12",
    )
    return replace(notification, **overrides)


def make_recipient(**overrides: Any) -> Recipient:
    """Return a person to page."""
    return replace(
        Recipient(id="alice", name="Alice", email="alice@example.org", phone="+14155550100"),
        **overrides,
    )


class RecordingLogger:
    """A structlog-like logger that keeps events so tests can assert on them."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _log(self, level: str, event: str, **kw: Any) -> None:
        self.events.append({"level": level, "event": event, **kw})

    def info(self, event: str, **kw: Any) -> None:
        """Record an info event."""
        self._log("info", event, **kw)

    def warning(self, event: str, **kw: Any) -> None:
        """Record a warning event."""
        self._log("warning", event, **kw)

    def error(self, event: str, **kw: Any) -> None:
        """Record an error event."""
        self._log("error", event, **kw)


def make_context(http: Any, logger: Any = None) -> ChannelContext:
    """Return a channel context with a fixed clock."""
    return ChannelContext(http=http, logger=logger or structlog.get_logger(), clock=lambda: NOW)


@dataclass
class Recorded:
    """One request a local server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """Return the body parsed as JSON."""
        return json.loads(self.body)


Responder = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RecordingServer:
    """A local HTTP server that records every request and answers with `respond`."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    respond: Responder | None = None
    release: asyncio.Event = field(default_factory=asyncio.Event)


SERVER = web.AppKey("server", RecordingServer)


@asynccontextmanager
async def recording_server(respond: Responder | None = None) -> AsyncIterator[RecordingServer]:
    """Run a local aiohttp server on a free port; default answer is 200 `ok`."""
    port = free_port()
    server = RecordingServer(url=f"http://127.0.0.1:{port}", respond=respond)

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        server.requests.append(
            Recorded(request.method, request.path_qs, dict(request.headers), body)
        )
        if server.respond is not None:
            return await server.respond(request)
        return web.Response(text="ok")

    app = web.Application()
    app[SERVER] = server
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


def status(code: int, text: str = "", headers: dict[str, str] | None = None) -> Responder:
    """Return a responder answering with a fixed status."""

    async def respond(request: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text=text, headers=headers)

    return respond


async def stall(request: web.Request) -> web.StreamResponse:
    """Answer only when the test is over, so the client's timeout fires first."""
    await request.app[SERVER].release.wait()
    return web.Response(text="late")
