"""Wire escalation into the app: the worker, the watchdog and `IncidentActions` (cleanup_ctx)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from receiver.actions import IncidentActions
from receiver.appkeys import (
    ACTIONS,
    CLOCK,
    CONFIG,
    ESCALATOR,
    LOG,
    METRICS,
    RULES,
    RUN_WORKER,
    STORE,
    WATCHDOG,
    WORKER,
)
from receiver.escalator import EscalationWorker, EscalatorMetrics
from receiver.people import Directory
from receiver.silencer import SILENCER
from receiver.watchdog import WatchdogMonitor, split
from receiver.webhook import Payload


async def escalation_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create the actions, the escalation worker and the watchdog; run them unless tests drive."""
    config, store, rules = app[CONFIG], app[STORE], app[RULES]
    outbox = app[WORKER]
    worker = EscalationWorker(
        store,
        rules,
        config.escalation,
        EscalatorMetrics(app[METRICS].registry),
        app[LOG],
        clock=app[CLOCK],
        delivered=outbox.wake,
    )

    def wake() -> None:
        outbox.wake()
        worker.wake()

    def changed() -> None:
        silencer = app.get(SILENCER)  # created after the actions: it resolves through them
        if silencer is not None:
            silencer.wake()

    app[ESCALATOR] = worker
    app[ACTIONS] = IncidentActions(store, rules, app[CLOCK], app[LOG], wake, changed)
    directory = Directory(config.people, config.schedules)
    watchdog = None
    if config.watchdog is not None:
        watchdog = WatchdogMonitor(
            config.watchdog, store, rules, directory, app[LOG], app[CLOCK], outbox.wake
        )
    app[WATCHDOG] = watchdog
    tasks = []
    if app[RUN_WORKER]:  # tests drive the worker and the watchdog by hand with a fake clock
        tasks.append(asyncio.create_task(worker.run(), name="escalation-worker"))
        if watchdog is not None:
            tasks.append(asyncio.create_task(watchdog.run(), name="watchdog"))
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def watchdog_filter(app: web.Application, payload: Payload) -> Payload | None:
    """Record the watchdog's heartbeat; return the rest of the payload (None: nothing left)."""
    watchdog = app[WATCHDOG]
    if watchdog is None:
        return payload
    rest, beat = split(payload, watchdog.config.alertname)
    if beat:
        await watchdog.beat()
    return rest
