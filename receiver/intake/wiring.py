"""The inbox intake in the receiver app: accept, report, read-your-writes, readiness."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Literal

from aiohttp import web

from maintwatch import logs
from receiver.appkeys import (
    CLOCK,
    CONFIG,
    ESCALATOR,
    INTAKE,
    LOG,
    METRICS,
    RULES,
    SILENCER,
    STORE,
    WATCHDOG,
    WORKER,
)
from receiver.config import PostgresStore, ReceiverBase, SqliteStore
from receiver.intake.applier import Setup
from receiver.intake.inbox import Inbox
from receiver.intake.payload import Payload
from receiver.intake.protocol import Applied, Tally, log_applied
from receiver.intake.supervisor import Intake, Supervisor
from receiver.intake.table import TableInbox
from receiver.intake.watchdog import split
from receiver.metrics import Waiting
from receiver.store import Stats, StoreUnavailable
from receiver.store.batch import WriterStopped
from receiver.store.postgres import PostgresBackend

READ_YOUR_WRITES_WAIT = 2.0


def inbox_kind(config: ReceiverBase) -> Literal["file", "table"] | None:
    """Return where accepted webhooks wait: a local file, PostgreSQL's table, or None (direct)."""
    intake = config.intake
    if intake.mode == "direct":
        return None
    if isinstance(config.store, PostgresStore) and intake.inbox_path is None:
        # The shared table: what a replica accepted never waits on that replica's disk.
        return "table"
    return "file"


def inbox_path(config: ReceiverBase) -> Path | None:
    """Return the inbox file, or None (applied in the request, or PostgreSQL's inbox table)."""
    if inbox_kind(config) != "file":
        return None
    if config.intake.inbox_path is not None:
        return config.intake.inbox_path
    assert isinstance(config.store, SqliteStore)
    return Path(f"{config.store.path}.inbox")


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
    """Append a validated webhook to the inbox; answer once it is durable (disk or commit)."""
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
    except (OSError, WriterStopped, sqlite3.Error, StoreUnavailable) as exc:
        app[LOG].error("webhook_inbox_unavailable", error=str(exc), group_key=payload.groupKey)
        return "unavailable", web.Response(status=503, text="inbox unavailable, retry\n")
    # Written out rather than json.dumps'd: this answer is most of what a busy loop serves.
    body = b'{"status": "ok", "accepted": %d}' % seq
    return "accepted", web.Response(body=body, content_type="application/json")


def record(app: web.Application, item: Applied) -> None:
    """Log, count and wake the workers for one webhook applied in the request."""
    log_applied(app[LOG], item)
    count(app, Tally.of(0, [item]))


def count(app: web.Application, tally: Tally) -> None:
    """Count what a batch of applied webhooks did and wake the workers it gave work to."""
    metrics = app[METRICS]
    if tally.failed:
        metrics.intake_apply_failures.inc(tally.failed)
    if tally.firing:
        metrics.alert_statuses["firing"].inc(tally.firing)
    if tally.resolved:
        metrics.alert_statuses["resolved"].inc(tally.resolved)
    if tally.truncated:
        metrics.truncated.inc(tally.truncated)
    for action, n in tally.actions.items():
        if action != "watchdog":
            metrics.incident_actions[action].inc(n)
    if tally.actions["resolve"]:
        silencer = app[SILENCER]
        if silencer is not None:
            silencer.wake()  # its silences end now, not at the next pass
    if tally.notifications:
        app[WORKER].wake()
    if tally.timer is not None:
        app[ESCALATOR].wake_by(tally.timer)


def _count_applied(app: web.Application, tally: Tally) -> None:
    # An inbox row counts as a webhook twice: `accepted` at the answer, its result once applied.
    count(app, tally)
    app[METRICS].intake_lag.set(tally.lag)
    outcomes = app[METRICS].webhook_outcomes
    if tally.failed:
        outcomes["apply_failed"].inc(tally.failed)
    unchanged = tally.actions["none"]
    if unchanged:
        outcomes["unchanged"].inc(unchanged)
    processed = sum(tally.actions.values()) - unchanged - tally.actions["watchdog"]
    if processed:
        outcomes["processed"].inc(processed)


async def intake_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the inbox and run the applier, unless webhooks are applied in the request."""
    config = app[CONFIG]
    kind = inbox_kind(config)
    if kind is None:
        yield
        return
    path = inbox_path(config)
    alertname = config.watchdog.alertname if config.watchdog is not None else None
    setup = Setup(config.store, app[RULES], path, alertname, logs.settings())
    inbox: Inbox | TableInbox

    def applied(tally: Tally) -> None:
        if isinstance(inbox, Inbox):
            inbox.pending.applied(tally.mark)
        _count_applied(app, tally)

    supervisor = Supervisor(setup, applied, app[LOG])
    if path is not None:
        inbox = Inbox(path, supervisor.ring)
    else:
        store = app[STORE]
        assert isinstance(store, PostgresBackend)
        inbox = TableInbox(store, supervisor.ring)
    try:
        await inbox.open()
    except BaseException:
        supervisor.close()
        raise
    app[METRICS].intake_gauges.waiting = _waiting(app, inbox)
    app[INTAKE] = Intake(inbox, supervisor)
    running = asyncio.create_task(supervisor.run(), name="intake-applier")
    try:
        yield
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await inbox.close()  # first: its last appends still ring a live applier
        await supervisor.stop()


def _waiting(app: web.Application, inbox: Inbox | TableInbox) -> Callable[[], Waiting]:
    if isinstance(inbox, Inbox):
        pending = inbox.pending
        return lambda: (pending.count(), pending.oldest())

    def table() -> Waiting:
        # Every replica's rows, counted with the store gauges (a scrape does no I/O).
        stats = app[METRICS].store_gauges.stats or Stats()
        return stats.inbox_rows, stats.inbox_oldest

    return table


def problem(app: web.Application) -> str | None:
    """Return why intake is not ready (the applier is down), or None."""
    intake = app[INTAKE]
    if intake is not None and not intake.supervisor.up:
        return "intake applier is down"
    return None


def read_your_writes(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap an incident read: it waits until every webhook accepted before it is applied
    (bounded), so a client that got a 200 then lists incidents sees its webhook's."""

    @functools.wraps(handler)
    async def read(request: web.Request) -> web.StreamResponse:
        intake = request.app[INTAKE]
        if intake is not None:
            await intake.caught_up(READ_YOUR_WRITES_WAIT)
        return await handler(request)

    return read
