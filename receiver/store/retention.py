"""Retention: prune resolved incidents and delivered notifications on a timer, in small batches.

What goes (both stores, same SQL in `receiver.store.retention_sql`):

* incidents resolved more than `resolved_incidents` ago, with their alerts, timeline, outbox
  rows and delivery log — unless a message of theirs is still pending or sending, or the dead
  man's switch still points at them;
* outbox rows (and their delivery log) of resolved incidents that finished (sent, failed or
  unknown) more than `delivered_notifications` ago.

Open incidents keep everything. Each batch is one short transaction of at most `batch_size`
rows, so intake waits at most one batch behind pruning.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from receiver import metricdefs as m
from receiver.config import RetentionConfig
from receiver.metrics import make_counter, make_gauge
from receiver.store import Store
from receiver.store.base import PruneTarget
from receiver.worker import PeriodicWorker

MAX_BATCHES = 1000  # per target and run: a backlog larger than this waits for the next run


@dataclass(frozen=True)
class Cutoffs:
    """Rows older than these epoch times are expired."""

    incidents: float
    notifications: float


def cutoffs(config: RetentionConfig, now: float) -> Cutoffs:
    """Return the expiry times for `now` (pure)."""
    return Cutoffs(now - config.resolved_incidents, now - config.delivered_notifications)


class RetentionMetrics:
    """Deleted rows and the last successful run, in the app's registry."""

    def __init__(self, registry: Any) -> None:
        self.deleted = make_counter(m.RETENTION_DELETED_TOTAL, registry)
        self.last_success = make_gauge(m.RETENTION_LAST_SUCCESS_TIMESTAMP_SECONDS, registry)


class Retention(PeriodicWorker):
    """Prune expired rows every `interval`; `run_once` for tests, `run` as the background task."""

    name = "retention"
    crash_event = "retention_failed"

    def __init__(
        self,
        store: Store,
        config: RetentionConfig,
        metrics: RetentionMetrics,
        logger: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config.interval, logger, clock)
        self.store, self.config, self.metrics = store, config, metrics

    async def run_once(self) -> dict[str, int]:
        """Prune every target until no expired rows are left; return rows deleted per target."""
        started = time.monotonic()
        limits = cutoffs(self.config, self._clock())
        # Notifications first: they are what keeps an old incident's outbox from emptying.
        deleted = {
            "notifications": await self._drain("notifications", limits.notifications),
            "incidents": await self._drain("incidents", limits.incidents),
        }
        self.metrics.last_success.set(self._clock())
        self._log.info("retention_pruned", seconds=round(time.monotonic() - started, 3), **deleted)
        return deleted

    async def _drain(self, target: PruneTarget, before: float) -> int:
        total = 0
        for _ in range(MAX_BATCHES):
            count = await self.store.prune(target, before, self.config.batch_size)
            total += count
            self.metrics.deleted.labels(target).inc(count)
            if count < self.config.batch_size:
                break
            await asyncio.sleep(0)  # let waiting intakes and deliveries in between batches
        return total
