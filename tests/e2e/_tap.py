"""A pass-through HTTP tap between one Alertmanager and the receiver, recording each delivery.

With two Alertmanagers both posting to the receiver, the tap proves from the outside that each
of them delivered a group (and what the receiver answered), so "one page" is checked against
two real deliveries rather than assumed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.conftest import free_port


@dataclass(frozen=True)
class Delivery:
    """One webhook an Alertmanager sent through the tap, and the receiver's answer."""

    group_key: str
    status: str
    alertnames: tuple[str, ...]
    answer_status: int
    answer: dict[str, Any]


@dataclass
class Tap:
    """Where the tap listens and what passed through it."""

    name: str
    url: str
    target: str
    deliveries: list[Delivery] = field(default_factory=list)

    def of(self, alertname: str) -> list[Delivery]:
        """Return the deliveries holding an alert named `alertname`."""
        return [d for d in list(self.deliveries) if alertname in d.alertnames]


TAP = web.AppKey("tap", Tap)
HTTP = web.AppKey("http", aiohttp.ClientSession)


async def _forward(request: web.Request) -> web.Response:
    tap, http = request.app[TAP], request.app[HTTP]
    body = await request.read()
    headers = {k: v for k, v in request.headers.items() if k.lower() in ("authorization",)}
    headers["Content-Type"] = request.headers.get("Content-Type", "application/json")
    try:
        async with http.post(tap.target + request.path_qs, data=body, headers=headers) as answer:
            text, status = await answer.text(), answer.status
    except aiohttp.ClientConnectionError as exc:
        # The receiver is restarting (SIGHUP): 503 makes Alertmanager retry at once.
        return web.Response(status=503, text=f"tap: receiver unreachable: {exc}\n")
    payload = json.loads(body)
    tap.deliveries.append(
        Delivery(
            group_key=payload["groupKey"],
            status=payload["status"],
            alertnames=tuple(sorted({a["labels"].get("alertname", "") for a in payload["alerts"]})),
            answer_status=status,
            answer=json.loads(text) if status == 200 else {"text": text},
        )
    )
    return web.Response(status=status, text=text, content_type="application/json")


@asynccontextmanager
async def webhook_tap(name: str, target: str) -> AsyncIterator[Tap]:
    """Serve a tap forwarding every POST to `target` (the receiver's base URL)."""
    port = free_port()
    tap = Tap(name=name, url=f"http://127.0.0.1:{port}", target=target)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        app = web.Application()
        app[TAP], app[HTTP] = tap, http
        app.router.add_post("/{tail:.*}", _forward)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            yield tap
        finally:
            await runner.cleanup()
