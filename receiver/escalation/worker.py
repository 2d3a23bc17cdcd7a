"""The escalation worker: feed due timers to the engine, against the store; audit overdue ones.

Timers live on the incident rows (`next_step_at`, fenced by `timer_version`), so they survive
restarts and any replica can run them. Each tick claims due incidents (`FOR UPDATE SKIP LOCKED`
on PostgreSQL; SQLite's single writer serializes), applies the engine and queues the messages
in the same transaction, then wakes the outbox worker. Between ticks the worker sleeps until
the earliest timer, at most `poll_interval` (timers set by another replica are seen by then).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from receiver import metricdefs as m
from receiver.escalation.settings import EscalatorConfig
from receiver.metrics import make_counter, make_gauge, make_histogram
from receiver.store import IntakeRules, Store
from receiver.store.base import Fired
from receiver.worker import PeriodicWorker

_LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)


class EscalatorMetrics:
    """The worker's metrics, registered in the app's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.timers = make_counter(m.ESCALATION_TIMERS_TOTAL, registry)
        self.lateness = make_histogram(m.ESCALATION_LATENESS_SECONDS, registry, _LATENESS_BUCKETS)
        self.tick = make_histogram(m.ESCALATION_TICK_DURATION_SECONDS, registry)
        self.overdue = make_gauge(m.OVERDUE_TIMERS, registry)


class EscalationWorker(PeriodicWorker):
    """Run due escalation timers; one task per receiver process."""

    name = "escalation"

    def __init__(
        self,
        store: Store,
        rules: IntakeRules,
        config: EscalatorConfig,
        metrics: EscalatorMetrics,
        logger: Any,
        clock: Callable[[], float] = time.time,
        delivered: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(config.poll_interval, logger, clock)
        self.store, self.rules, self.config, self.metrics = store, rules, config, metrics
        self._delivered = delivered
        self._last_audit = float("-inf")
        # The earliest timer as this pass read it, when it fired none: the sleep that follows
        # needs no second read (a timer set meanwhile wakes the worker: it is not asleep yet).
        self._unchanged_due: tuple[float | None] | None = None

    async def run_once(self) -> list[Fired]:
        """Handle one batch of due timers; return what was handled."""
        now = self._clock()
        started = time.perf_counter()
        self._unchanged_due = None
        due = await self.store.next_timer()
        if due is None or due > now:
            self._unchanged_due = (due,)
            # Nothing due: no write transaction. Intake wakes this worker for every incident it
            # opens; taking the write lock each time would queue behind (and stall) intake.
            self.metrics.tick.observe(time.perf_counter() - started)
            return []
        fired = await self.store.escalate_due(now, self.config.batch_size, self.rules)
        self.metrics.tick.observe(time.perf_counter() - started)
        for item in fired:
            self._record(item, now)
        if any(item.queued for item in fired):
            self._delivered()
        return fired

    def _record(self, item: Fired, now: float) -> None:
        self.metrics.timers.labels("acted" if item.acted else "ignored").inc()
        self.metrics.lateness.observe(max(0.0, now - item.due_at))
        if item.acted:
            self._log.info(
                "escalation_step_due",
                incident_id=item.incident_id,
                late_seconds=round(now - item.due_at, 3),
                notifications=item.queued,
            )

    async def audit(self) -> int:
        """Set the overdue gauge; log a line when timers are overdue (a stuck or missing worker)."""
        now = self._clock()
        count, oldest = await self.store.overdue(now - self.config.overdue_after)
        self.metrics.overdue.set(count)
        if count:
            assert oldest is not None
            self._log.warning(
                "escalation_timers_overdue", incidents=count, oldest_late_seconds=now - oldest
            )
        return count

    async def tick(self) -> bool:
        """Handle due timers, audit when due; a full batch means more are waiting."""
        busy = len(await self.run_once()) >= self.config.batch_size
        if self._clock() - self._last_audit >= self.config.audit_interval:
            self._last_audit = self._clock()
            await self.audit()
        return busy

    async def next_due(self) -> float | None:
        """The earliest timer: sleep until then, at most `poll_interval`."""
        known, self._unchanged_due = self._unchanged_due, None
        if known is not None:
            return known[0]
        return await self.store.next_timer()
