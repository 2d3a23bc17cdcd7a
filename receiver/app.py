"""The receiver's composition root: every component is built and every task started here.

`make_app` sets each typed key the handlers read (optional components are None from the
start) and registers the resources in one cleanup_ctx list, in dependency order; aiohttp
closes them in reverse, so the background workers stop first and the store closes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web

from receiver.ack.actions import IncidentActions
from receiver.appkeys import (
    ACTIONS,
    CHANNELS,
    CLOCK,
    CONFIG,
    DIGEST,
    ESCALATOR,
    GUARD,
    INTAKE,
    LOG,
    METRICS,
    PENDING,
    RETENTION,
    RULES,
    RUN_WORKER,
    SILENCER,
    STORE,
    WATCHDOG,
    WORKER,
)
from receiver.config import ReceiverBase
from receiver.connections import ConnectionGuard, track
from receiver.delivery.channels import REGISTRY, ChannelContext, Recipient
from receiver.delivery.digest import DigestTask
from receiver.delivery.outbox import OutboxWorker
from receiver.escalation.plan import EscalationRules
from receiver.escalation.worker import EscalationWorker, EscalatorMetrics
from receiver.graphs import graphs_ctx
from receiver.intake import wiring as intake
from receiver.intake.watchdog import WatchdogMonitor
from receiver.metrics import ReceiverMetrics
from receiver.oncall.people import Directory
from receiver.routing.routes import compile_routes
from receiver.server import add_routes
from receiver.silences.alertmanager import AlertmanagerAPI
from receiver.silences.silencer import Silencer, SilencerMetrics
from receiver.store import IntakeRules, StoreUnavailable, make_store
from receiver.store.retention import Retention, RetentionMetrics
from receiver.store.sqlite import SqliteBackend
from receiver.web.ledger import Ledger
from receiver.web.reads import PageReads
from receiver.web.sqlite_reader import SqliteReader
from receiver.web.state import WEB, web_state
from receiver.worker import PeriodicWorker

Context = Callable[[web.Application], AsyncIterator[None]]


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


async def _ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    ledger = Ledger(store)
    app[WEB].ledger = ledger
    # SQLite: pages read on connections of their own, never queueing before intake's writes.
    reader = SqliteReader(store.path) if isinstance(store, SqliteBackend) else None
    app[WEB].reads = PageReads(reader.query if reader else ledger.query, store)
    try:
        yield
    finally:
        if reader is not None:
            reader.close()


async def _channels_ctx(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as http:
        context = ChannelContext(http=http, logger=app[LOG], clock=app[CLOCK])
        channels = {c.name: REGISTRY[c.type](c, context) for c in app[CONFIG].channel_configs}
        app[CHANNELS] = channels
        try:
            yield
        finally:
            await asyncio.gather(*(c.close() for c in channels.values()))


async def _components_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the workers and the actions, which wake each other, in dependency order."""
    config, store, rules, log, clock = app[CONFIG], app[STORE], app[RULES], app[LOG], app[CLOCK]
    registry = app[METRICS].registry
    outbox = OutboxWorker(
        store,
        app[CHANNELS],
        people(config),
        config.delivery,
        config.sms_rate_limit,
        rules,
        app[METRICS],
        log,
        clock=clock,
        links=app[WEB].link_fields(clock),
    )
    escalator = EscalationWorker(
        store,
        rules,
        config.escalation,
        EscalatorMetrics(registry),
        log,
        clock=clock,
        delivered=outbox.wake,
    )
    silencer: Silencer | None = None

    def acted() -> None:
        outbox.wake()
        escalator.wake()

    def silences_changed() -> None:
        # The silencer resolves through the actions, so it is built after them.
        if silencer is not None:
            silencer.wake()

    actions = IncidentActions(store, rules, clock, log, acted, silences_changed)
    async with contextlib.AsyncExitStack() as stack:
        if config.alertmanager.enabled:
            http = await stack.enter_async_context(aiohttp.ClientSession())
            silencer = Silencer(
                config.alertmanager,
                store,
                AlertmanagerAPI(http, config.alertmanager),
                actions,
                rules,
                SilencerMetrics(registry),
                log,
                clock,
            )
        if config.watchdog is not None:
            directory = Directory(config.people, config.schedules)
            app[WATCHDOG] = WatchdogMonitor(
                config.watchdog, store, rules, directory, log, clock, outbox.wake
            )
        app[WORKER] = outbox
        app[ESCALATOR] = escalator
        app[ACTIONS] = actions
        app[SILENCER] = silencer
        app[RETENTION] = Retention(store, config.retention, RetentionMetrics(registry), log, clock)
        channels = app[CHANNELS]
        app[DIGEST] = DigestTask(config.digest, app[WEB].require_ledger(), channels, clock, log)
        yield


def _background(app: web.Application) -> list[tuple[PeriodicWorker, float]]:
    """The workers this app runs, each with its stop grace."""
    config = app[CONFIG]
    # A send cancelled mid-way is taken up again after its lease (an SMS checked with Twilio
    # first): the outbox lets in-flight sends finish instead.
    workers: list[tuple[PeriodicWorker | None, float]] = [
        (app[WORKER], config.delivery.send_timeout),
        (app[ESCALATOR], 0.0),
        (app[WATCHDOG], 0.0),
        (app[SILENCER], 0.0),
        (app[RETENTION] if config.retention.enabled else None, 0.0),
        (app[DIGEST] if config.digest.enabled else None, 0.0),
    ]
    return [(worker, grace) for worker, grace in workers if worker is not None]


async def _workers_ctx(app: web.Application) -> AsyncIterator[None]:
    if not app[RUN_WORKER]:  # tests drive each worker's run_once by hand with a fake clock
        yield
        return
    metrics = app[METRICS].workers
    running = [
        (worker, grace, asyncio.create_task(worker.run(metrics), name=worker.name))
        for worker, grace in _background(app)
    ]
    yield
    await asyncio.gather(*(worker.stop(task, grace) for worker, grace, task in running))


def make_app(
    config: ReceiverBase,
    logger: Any,
    clock: Callable[[], float] = time.time,
    run_worker: bool = True,
) -> web.Application:
    """Build the receiver app; `run_worker=False` leaves the workers to the caller's run_once."""
    guard = ConnectionGuard(config.server, logger)
    app = web.Application(
        client_max_size=config.webhook.max_body_bytes,
        middlewares=[track(guard)],
    )
    app[GUARD] = guard
    app[CONFIG] = config
    app[CLOCK] = clock
    app[LOG] = logger
    app[METRICS] = ReceiverMetrics(clock)
    app[RULES] = intake_rules(config)
    app[PENDING] = [0]
    app[RUN_WORKER] = run_worker
    app[WEB] = web_state(config)
    app[WATCHDOG] = None
    app[SILENCER] = None
    app[INTAKE] = None
    contexts: list[Context] = [
        _store_ctx,
        _ledger_ctx,
        _channels_ctx,
        _components_ctx,
        graphs_ctx(config.web.graphs),
        _workers_ctx,
        intake.intake_ctx,  # last: stops accepting first, before what it wakes stops
    ]
    app.cleanup_ctx.extend(contexts)
    add_routes(app, config)
    return app
