"""HTTP handlers: the Alertmanager webhook, health, readiness, metrics (assembled in `app`)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from importlib import resources

from aiohttp import web
from prometheus_client import exposition

from receiver.appkeys import (
    CLOCK,
    CONFIG,
    INTAKE,
    LOG,
    METRICS,
    PENDING,
    RULES,
    STORE,
)
from receiver.config import ReceiverBase, WebhookConfig
from receiver.intake import wiring as intake
from receiver.intake.payload import Payload, PayloadError, parse_payload
from receiver.intake.protocol import Applied
from receiver.store import StoreUnavailable
from receiver.web import api
from receiver.web import routes as web_routes

READY_TIMEOUT = 2.0


def _authorized(request: web.Request, config: WebhookConfig) -> bool:
    header = request.headers.get("Authorization", "")
    if config.auth in ("none", None):
        return config.auth == "none"  # None: refused (the config check reports it as an error)
    scheme, _, value = header.partition(" ")
    if config.auth == "bearer":
        token = config.bearer_token()
        assert token is not None
        return scheme.lower() == "bearer" and hmac.compare_digest(
            value.strip().encode(), token.get_secret_value().encode()
        )
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(value.strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return False
    expected = config.basic_password()
    assert expected is not None
    assert config.username is not None
    user_ok = hmac.compare_digest(user, config.username.encode())
    return hmac.compare_digest(password, expected.get_secret_value().encode()) and user_ok


async def alertmanager_webhook(request: web.Request) -> web.Response:
    """Validate, persist, then answer 200; 4xx only for requests that can never succeed."""
    app = request.app
    metrics = app[METRICS]
    outcome, response = "error", web.Response(status=500, text="internal error\n")
    with metrics.webhook_seconds.time():
        try:
            outcome, response = await _intake(request)
        finally:
            metrics.webhook_outcomes[outcome].inc()
    return response


async def _intake(request: web.Request) -> tuple[str, web.Response]:
    app = request.app
    config = app[CONFIG].webhook
    if not _authorized(request, config):
        headers = {"WWW-Authenticate": "Basic" if config.auth == "basic" else "Bearer"}
        return "unauthorized", web.Response(status=401, text="unauthorized\n", headers=headers)
    if app[PENDING][0] >= config.max_pending:
        app[LOG].warning("webhook_overloaded", pending=app[PENDING][0])
        return "overloaded", web.Response(status=503, text="overloaded, retry\n")
    # Counted from the first byte of the body: bodies still arriving hold memory too.
    app[PENDING][0] += 1
    try:
        return await _read_and_persist(request)
    finally:
        app[PENDING][0] -= 1


async def _read_and_persist(request: web.Request) -> tuple[str, web.Response]:
    app = request.app
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = app[CONFIG].webhook.max_body_bytes
        return "too_large", web.Response(status=413, text=f"body larger than {limit} bytes\n")
    except ConnectionResetError:  # the client went away, or was cut off for being too slow
        return "aborted", web.Response(status=408, text="body incomplete\n")
    try:
        payload = parse_payload(body)
    except PayloadError as exc:
        app[LOG].warning("webhook_rejected", reason=str(exc))
        return "bad_request", web.Response(status=400, text=f"{exc}\n")
    if app[INTAKE] is not None:
        return await intake.accept(app, payload, body)
    return await _persist(app, payload)


async def _persist(app: web.Application, payload: Payload) -> tuple[str, web.Response]:
    log = app[LOG]
    try:
        rest = await intake.watchdog_filter(app, payload)  # Watchdog alerts never open incidents
        if rest is None:
            return "watchdog", web.json_response({"status": "ok", "action": "watchdog"})
        payload = rest
        result = await app[STORE].ingest(payload, app[CLOCK](), app[RULES])
    except StoreUnavailable as exc:
        log.error("webhook_store_unavailable", error=str(exc), group_key=payload.groupKey)
        return "unavailable", web.Response(status=503, text="store unavailable, retry\n")
    intake.record(app, Applied.of(0, payload, result))
    outcome = "processed" if result.action != "none" else "unchanged"
    return outcome, web.json_response(
        {"status": "ok", "action": result.action, "incident_id": result.incident_id}
    )


async def metrics_handler(request: web.Request) -> web.Response:
    """Serve this app's registry."""
    body = exposition.generate_latest(request.app[METRICS].registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = exposition.CONTENT_TYPE_LATEST
    return response


async def healthy(_: web.Request) -> web.Response:
    """Answer 200 while the process runs."""
    return web.Response(text="maintwatch receiver is Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    """Answer 200 when the store answers."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await request.app[STORE].ping()
    except (StoreUnavailable, TimeoutError) as exc:
        return web.Response(status=503, text=f"store unavailable: {exc}\n")
    if (problem := intake.problem(request.app)) is not None:
        return web.Response(status=503, text=f"{problem}\n")
    return web.Response(text="maintwatch receiver is Ready.\n")


async def openapi_spec(_: web.Request) -> web.Response:
    """Serve the OpenAPI document (docs/openapi.yaml, shipped as package data)."""
    text = resources.files("receiver").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="application/yaml")


def add_routes(app: web.Application, config: ReceiverBase) -> None:
    """Register every HTTP route of the receiver."""
    app.router.add_post("/webhooks/alertmanager", alertmanager_webhook)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/api/openapi.yaml", openapi_spec)
    api.add_routes(app, config)
    web_routes.add_routes(app, config)
