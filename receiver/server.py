"""HTTP server: the Alertmanager webhook, health, readiness, metrics; resources in cleanup_ctx."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import time
from collections.abc import AsyncIterator, Callable
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import exposition

from receiver import api
from receiver.appkeys import (
    CHANNELS,
    CLOCK,
    CONFIG,
    ESCALATOR,
    LOG,
    METRICS,
    PENDING,
    RULES,
    RUN_WORKER,
    STORE,
    WORKER,
)
from receiver.channels import REGISTRY, ChannelContext, Recipient
from receiver.config import ReceiverBase, WebhookConfig
from receiver.connections import ConnectionGuard, track
from receiver.escalation_app import escalation_ctx, watchdog_filter
from receiver.intake import wiring as intake
from receiver.intake.wiring import INTAKE
from receiver.metrics import ReceiverMetrics
from receiver.outbox import OutboxWorker
from receiver.people import Directory
from receiver.retention import retention_ctx
from receiver.routing import compile_routes
from receiver.silencer import SILENCER, silencer_ctx
from receiver.store import IntakeRules, StoreUnavailable, make_store
from receiver.store.escalation_plan import EscalationRules
from receiver.web import routes as web_routes
from receiver.web.state import WEB
from receiver.webhook import Payload, PayloadError, parse_payload

READY_TIMEOUT = 2.0
GUARD = web.AppKey("connection_guard", ConnectionGuard)


def intake_rules(config: ReceiverBase) -> IntakeRules:
    """Build the pure intake rules from the config."""
    at_most_once = frozenset(
        c.name for c in config.channel_configs if REGISTRY[c.type].at_most_once
    )
    return IntakeRules(
        routes=compile_routes(config.routes, config.default_route),
        severity_label=config.severity.label,
        default_severity=config.severity.default,
        external_url=config.external_url,
        at_most_once=at_most_once,
        escalation=EscalationRules(
            {p.name: p for p in config.policies}, Directory(config.people, config.schedules)
        ),
    )


def people(config: ReceiverBase) -> dict[str, Recipient]:
    """Return configured people as channel Recipients by id."""
    return {
        p.id: Recipient(p.id, p.name, p.email, p.phone, p.chat, p.timezone) for p in config.people
    }


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
            metrics.webhooks.labels(outcome).inc()
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
    if INTAKE in app:
        return await intake.accept(app, payload, body)
    return await _persist(app, payload)


async def _persist(app: web.Application, payload: Payload) -> tuple[str, web.Response]:
    log, metrics = app[LOG], app[METRICS]
    try:
        rest = await watchdog_filter(app, payload)  # Watchdog alerts never open incidents
        if rest is None:
            return "watchdog", web.json_response({"status": "ok", "action": "watchdog"})
        payload = rest
        result = await app[STORE].ingest(payload, app[CLOCK](), app[RULES])
    except StoreUnavailable as exc:
        log.error("webhook_store_unavailable", error=str(exc), group_key=payload.groupKey)
        return "unavailable", web.Response(status=503, text="store unavailable, retry\n")
    for alert in payload.alerts:
        metrics.alerts.labels(alert.status).inc()
    metrics.truncated.inc(payload.truncatedAlerts)
    metrics.incident_changes.labels(result.action).inc()
    log.info(
        "webhook_received",
        receiver=payload.receiver,
        group_key=payload.groupKey,
        status=payload.status,
        alerts=len(payload.alerts),
        truncated_alerts=payload.truncatedAlerts,
        action=result.action,
        incident_id=result.incident_id,
        notifications=result.notifications,
    )
    if result.action == "open":
        log.info("incident_opened", incident_id=result.incident_id, group_key=payload.groupKey)
    elif result.action == "resolve":
        log.info("incident_resolved", incident_id=result.incident_id, by="alertmanager")
        silencer = app[SILENCER]
        if silencer is not None:
            silencer.wake()  # its silences end now, not at the next pass
    if result.notifications:
        app[WORKER].wake()
    if result.action in ("open", "update"):
        app[ESCALATOR].wake()  # the engine may have set an earlier timer
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


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG].store
    store = make_store(config)
    try:
        await store.open()
    except StoreUnavailable as exc:
        if config.type != "postgres":
            raise
        # A database server comes back by itself: serve 503 (Alertmanager retries) and
        # reconnect on use, instead of exiting into a supervisor's FATAL state.
        app[LOG].error("store_unavailable_at_start", error=str(exc))
    app[STORE] = store
    yield
    await store.close()


async def _channels_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as http:
        context = ChannelContext(http=http, logger=app[LOG], clock=app[CLOCK])
        channels = {c.name: REGISTRY[c.type](c, context) for c in app[CONFIG].channel_configs}
        app[CHANNELS] = channels
        try:
            yield
        finally:
            await asyncio.gather(*(c.close() for c in channels.values()))


async def _worker_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    worker = OutboxWorker(
        app[STORE],
        app[CHANNELS],
        people(config),
        config.delivery,
        config.sms_rate_limit,
        app[RULES],
        app[METRICS],
        app[LOG],
        clock=app[CLOCK],
        links=app[WEB].link_fields(app[CLOCK]),
    )
    app[WORKER] = worker
    if not app[RUN_WORKER]:  # tests drive the worker by hand with a fake clock
        yield
        return
    task = asyncio.create_task(worker.run(), name="outbox-worker")
    yield
    # A send cancelled mid-way is taken up again after its lease (an SMS checked with Twilio
    # first): let in-flight sends finish instead.
    await worker.stop(task, config.delivery.send_timeout)


def make_app(
    config: ReceiverBase,
    logger: Any,
    clock: Callable[[], float] = time.time,
    run_worker: bool = True,
) -> web.Application:
    """Build the receiver app; store, HTTP session, channels and worker live in cleanup_ctx."""
    guard = ConnectionGuard(config.server, logger)
    app = web.Application(
        client_max_size=config.webhook.max_body_bytes,
        middlewares=[track(guard), intake.read_your_writes],
    )
    app[GUARD] = guard
    app[CONFIG] = config
    app[CLOCK] = clock
    app[LOG] = logger
    app[METRICS] = ReceiverMetrics(clock)
    app[RULES] = intake_rules(config)
    app[PENDING] = [0]
    app[RUN_WORKER] = run_worker
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_channels_ctx)
    app.cleanup_ctx.append(_worker_ctx)
    app.cleanup_ctx.append(escalation_ctx)
    app.cleanup_ctx.append(retention_ctx)
    app.cleanup_ctx.append(silencer_ctx)
    app.cleanup_ctx.append(intake.intake_ctx)
    app.router.add_post("/webhooks/alertmanager", alertmanager_webhook)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/api/openapi.yaml", openapi_spec)
    api.add_routes(app, config)
    web_routes.add_routes(app, config)
    return app
