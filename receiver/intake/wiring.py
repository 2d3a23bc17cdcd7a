"""The inbox intake in the receiver app: accept, report, read-your-writes, readiness."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web

from receiver.appkeys import (
    CLOCK,
    CONFIG,
    ESCALATOR,
    INTAKE,
    LOG,
    METRICS,
    RULES,
    SILENCER,
    WATCHDOG,
    WORKER,
)
from receiver.config import ReceiverBase, SqliteStore
from receiver.intake.applier import Setup
from receiver.intake.inbox import Inbox
from receiver.intake.payload import Payload
from receiver.intake.protocol import Applied
from receiver.intake.supervisor import Intake, Supervisor
from receiver.intake.watchdog import split
from receiver.store import StoreUnavailable
from receiver.store.batch import WriterStopped

READ_YOUR_WRITES_WAIT = 2.0
_READS = ("/api/v1/incidents", "/incidents")  # and "/", the incidents page


def inbox_path(config: ReceiverBase) -> Path | None:
    """Return the inbox file, or None when webhooks are applied in the request (direct)."""
    intake = config.intake
    if intake.mode == "direct":
        return None
    if intake.inbox_path is not None:
        return intake.inbox_path
    if isinstance(config.store, SqliteStore):
        return Path(f"{config.store.path}.inbox")
    # PostgreSQL: a replica's local inbox would hold what it accepted hostage to its disk.
    return Path("maintwatch-receiver.inbox") if intake.mode == "inbox" else None


async def watchdog_filter(app: web.Application, payload: Payload) -> Payload | None:
    """Record the watchdog's heartbeat; return the rest of the payload (None: nothing left)."""
    watchdog = app[WATCHDOG]
    if watchdog is None:
        return payload
    rest, beat = split(payload, watchdog.config.alertname)
    if beat:
        await watchdog.beat()
    return rest


async def accept(app: web.Application, payload: Payload, body: bytes) -> tuple[str, web.Response]:
    """Append a validated webhook to the inbox; answer once it is on disk."""
    intake = app[INTAKE]
    assert intake is not None  # the caller checked: webhooks are appended only in inbox mode
    try:
        if await watchdog_filter(app, payload) is None:  # Watchdog alerts never open incidents
            return "watchdog", web.json_response({"status": "ok", "action": "watchdog"})
    except StoreUnavailable as exc:
        app[LOG].error("webhook_store_unavailable", error=str(exc), group_key=payload.groupKey)
        return "unavailable", web.Response(status=503, text="store unavailable, retry\n")
    try:
        seq = await intake.inbox.append(app[CLOCK](), body)
    except (OSError, WriterStopped, sqlite3.Error) as exc:
        app[LOG].error("webhook_inbox_unavailable", error=str(exc), group_key=payload.groupKey)
        return "unavailable", web.Response(status=503, text="inbox unavailable, retry\n")
    intake.supervisor.ring()
    return "accepted", web.json_response({"status": "ok", "accepted": seq})


def record(app: web.Application, item: Applied) -> None:
    """Count, log and wake the workers for one applied webhook (either intake mode)."""
    log, metrics = app[LOG], app[METRICS]
    if item.error is not None:
        metrics.intake_apply_failures.inc()
        log.error("webhook_apply_failed", seq=item.seq, group_key=item.group_key, error=item.error)
        return
    firing = item.alert_statuses.count("firing")
    if firing:
        metrics.alert_statuses["firing"].inc(firing)
    if len(item.alert_statuses) > firing:
        metrics.alert_statuses["resolved"].inc(len(item.alert_statuses) - firing)
    if item.truncated:
        metrics.truncated.inc(item.truncated)
    if item.action == "watchdog":
        return
    metrics.incident_actions[item.action].inc()
    # Every webhook at debug (Alertmanager repeats a group every group_interval: at info this
    # line was most of the event loop's time under load); state changes stay at info.
    log.debug(
        "webhook_received",
        receiver=item.receiver,
        group_key=item.group_key,
        status=item.status,
        alerts=len(item.alert_statuses),
        truncated_alerts=item.truncated,
        action=item.action,
        incident_id=item.incident_id,
        notifications=item.notifications,
        seq=item.seq or None,
    )
    if item.action == "open":
        log.info("incident_opened", incident_id=item.incident_id, group_key=item.group_key)
    elif item.action == "resolve":
        log.info("incident_resolved", incident_id=item.incident_id, by="alertmanager")
        silencer = app[SILENCER]
        if silencer is not None:
            silencer.wake()  # its silences end now, not at the next pass
    if item.notifications:
        app[WORKER].wake()
    if item.action in ("open", "update"):
        app[ESCALATOR].wake()  # the engine may have set an earlier timer


def _record_applied(app: web.Application, item: Applied) -> None:
    # An inbox row counts as a webhook twice: `accepted` at the answer, its result once applied.
    record(app, item)
    if item.error is not None:
        app[METRICS].webhook_outcomes["apply_failed"].inc()
    elif item.action != "watchdog":
        outcome = "processed" if item.action != "none" else "unchanged"
        app[METRICS].webhook_outcomes[outcome].inc()


async def intake_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the inbox and run the applier, unless webhooks are applied in the request."""
    config = app[CONFIG]
    path = inbox_path(config)
    if path is None:
        yield
        return
    inbox = Inbox(path)
    await inbox.open()
    alertname = config.watchdog.alertname if config.watchdog is not None else None
    setup = Setup(config.store, app[RULES], path, alertname)
    supervisor = Supervisor(setup, lambda item: _record_applied(app, item), app[LOG])
    app[INTAKE] = Intake(inbox, supervisor)
    running = asyncio.create_task(supervisor.run(), name="intake-applier")
    try:
        yield
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await supervisor.stop()
        await inbox.close()


def problem(app: web.Application) -> str | None:
    """Return why intake is not ready (the applier is down), or None."""
    intake = app[INTAKE]
    if intake is not None and not intake.supervisor.up:
        return "intake applier is down"
    return None


def _shows_incidents(path: str) -> bool:
    return path == "/" or path.startswith(_READS)


@web.middleware
async def read_your_writes(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Hold incident reads until every webhook accepted before them is applied (bounded)."""
    intake = request.app[INTAKE]
    if intake is not None and request.method == "GET" and _shows_incidents(request.path):
        await intake.supervisor.caught_up(intake.inbox.last_seq, READ_YOUR_WRITES_WAIT)
    return await handler(request)
