"""Deliver outbox rows through channels: lanes, retries with backoff and jitter, fallback, metrics.

Lanes: each channel has its own `delivery.concurrency` slots, and one recipient holds at most
half of a lane's slots, so a hung or dead endpoint delays only its own messages. Rows are
claimed per lane only when it has free slots, most severe first.

Delivery rule: at-least-once for email and chat (a row found `sending` past its deadline is
sent again), at-most-once for channels flagged `at_most_once` (SMS): right before the provider
call the row's start mark is committed. A row found `sending` without a start mark never
reached the provider and is sent again; with one, or after a failure that came after the
request left (a dropped connection, a timeout, a 5xx), the provider is asked first (channels
that `reconcile`) and only what it has no record of is sent; a channel that cannot tell marks
the row `unknown` and the fallback channel gets a copy.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

from receiver.config import DeliveryConfig, RateLimitConfig
from receiver.delivery.channels import Channel, DeliveryError, Recipient
from receiver.delivery.notify import LinkFields, notification
from receiver.metrics import ReceiverMetrics
from receiver.store.base import (
    Fallback,
    Finish,
    IntakeRules,
    OutboxRow,
    Store,
    StoreUnavailable,
    Wanted,
)
from receiver.worker import PeriodicWorker

# A claim is on every page's path, so it does only what a page needs. Expired leases are
# seconds long: looking for them once a second loses nothing. The store's counts scan whole
# tables: gauges scraped every 15 s or more need them no more often than this.
RECOVER_EVERY = 1.0
STATS_EVERY = 5.0


def backoff(attempt: int, initial: float, maximum: float, jitter: float) -> float:
    """Return the delay before retry `attempt` (1-based); `jitter` in [0, 1) spreads it 50-100%."""
    base = min(maximum, initial * 2.0 ** max(0, attempt - 1))
    return base * (0.5 + jitter / 2)


def classify(exc: BaseException, timeout: float) -> DeliveryError:
    """Map what a send raised to a DeliveryError with a retryable flag."""
    if isinstance(exc, DeliveryError):
        return exc
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"timed out after {timeout:g}s", retryable=True)
    if isinstance(exc, aiohttp.ClientResponseError):
        return DeliveryError(f"HTTP {exc.status}: {exc.message}", retryable=exc.status >= 500)
    if isinstance(exc, aiohttp.ClientError | OSError):
        return DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
    return DeliveryError(f"unexpected {type(exc).__name__}: {exc}", retryable=False)


@dataclass(frozen=True)
class RetryRules:
    """What the worker does after a failed attempt."""

    max_attempts: int
    backoff_initial: float
    backoff_max: float
    give_up_after: float
    fallback: Fallback | None = None


def after_failure(
    row: OutboxRow,
    error: DeliveryError,
    now: float,
    rules: RetryRules,
    jitter: float,
    ambiguous: bool = False,
    reconciles: bool = False,
) -> Finish:
    """Return the row's next state after a failed attempt (pure).

    `ambiguous`: the request may have reached the provider. On an at-most-once channel that
    can ask its provider (`reconciles`) the row is retried with its start mark kept, so the
    next attempt asks first; on one that cannot, its fate is unknown and the fallback fires.
    """
    maybe = ambiguous and row.at_most_once
    if maybe and not reconciles:
        return _given_up(row, "unknown", f"{error.reason}; not resent (at-most-once)", now, rules)
    in_time = now - row.created_at < rules.give_up_after
    if error.retryable and row.attempts < rules.max_attempts and in_time:
        delay = backoff(row.attempts, rules.backoff_initial, rules.backoff_max, jitter)
        delay = max(delay, error.retry_after or 0.0)
        why = f"{error.reason}; may have been sent: asking before resending" if maybe else None
        return Finish(
            "pending", now, why or error.reason, next_attempt_at=now + delay, maybe_sent=maybe
        )
    why = (
        error.reason
        if not error.retryable
        else (f"{error.reason} (gave up after {row.attempts} attempts)")
    )
    return _given_up(row, "unknown" if maybe else "failed", why, now, rules)


def _given_up(
    row: OutboxRow, outcome: Literal["failed", "unknown"], why: str, now: float, rules: RetryRules
) -> Finish:
    fallback = rules.fallback
    if fallback is None or row.fallback_of is not None or fallback.channel == row.channel:
        return Finish(outcome, now, why)
    return Finish(outcome, now, f"{why}; falling back to {fallback.channel}", fallback=fallback)


class OutboxWorker(PeriodicWorker):
    """Claim due outbox rows and deliver them; one task per receiver process."""

    name = "outbox"

    def __init__(
        self,
        store: Store,
        channels: dict[str, Channel[Any]],
        people: Mapping[str, Recipient],
        delivery: DeliveryConfig,
        rate: RateLimitConfig,
        rules: IntakeRules,
        metrics: ReceiverMetrics,
        logger: Any,
        clock: Callable[[], float] = time.time,
        jitter: Callable[[], float] = random.random,
        links: LinkFields | None = None,
    ) -> None:
        super().__init__(delivery.poll_interval, logger, clock)
        self.store, self.channels, self.people = store, channels, people
        self._links = links  # signed ack/resolve links and SMS reply codes, when configured
        self.delivery, self.rate, self.metrics = delivery, rate, metrics
        self._jitter = jitter
        fallback = delivery.fallback_channel
        self.retry = RetryRules(
            delivery.max_attempts,
            delivery.backoff_initial,
            delivery.backoff_max,
            delivery.give_up_after,
            None
            if fallback is None
            else Fallback(fallback, fallback in rules.at_most_once, rules.rate_key(fallback, None)),
        )
        self._lanes: dict[str, int] = {}  # channel -> messages in flight
        self._people: dict[tuple[str, str], int] = {}  # (channel, recipient) -> in flight
        self._tasks: set[asyncio.Task[None]] = set()
        self._recover_at = float("-inf")  # the first pass recovers what a crash left
        self._stats_at = float("-inf")

    async def tick(self) -> bool:
        """Claim a round and start each row in its lane; a freed slot wakes the next round."""
        for row in await self._claim():
            self._spawn(row)
        await self._refresh_stats()
        return False

    async def drain(self) -> None:
        """Let in-flight sends finish: a send cancelled mid-way waits out its lease."""
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def abandon(self) -> None:
        """Cancel the sends still running past the stop grace."""
        left = list(self._tasks)
        for task in left:
            task.cancel()
        await asyncio.gather(*left, return_exceptions=True)

    async def run_once(self) -> int:
        """Claim one round of due rows, deliver them and wait; return how many were claimed."""
        rows = await self._claim()
        await asyncio.gather(*(self._in_lane(row) for row in rows), self._refresh_stats())
        return len(rows)

    async def _claim(self) -> list[OutboxRow]:
        """Recover expired claims (now and then), then claim due rows for free lane slots."""
        now = self._clock()
        if now >= self._recover_at:
            await self._recover(now)
            self._recover_at = now + RECOVER_EVERY
        lease = self.delivery.send_timeout + self.delivery.lease_margin
        size = self.delivery.concurrency
        wanted = Wanted(
            lanes={name: size - self._lanes.get(name, 0) for name in self.channels},
            per_recipient=max(1, size // 2),
            in_flight=dict(self._people),
            strays=size,
        )
        rows = await self.store.claim(now, wanted, lease, self.rate.max_messages, self.rate.window)
        for row in rows:
            # Held now, not when its task first runs: a claim made before then (nothing else
            # need suspend this worker in between) must see these slots taken.
            self._hold(row)
        return rows

    async def _recover(self, now: float) -> None:
        recovered = await self.store.recover(now)
        self.metrics.recovered.labels("resend").inc(len(recovered.retried))
        self.metrics.recovered.labels("check").inc(len(recovered.unsure))
        for row_id in recovered.unsure:
            self._log.warning(
                "notification_unsure",
                outbox_id=row_id,
                reason="found in sending after its request may have left; checking first",
            )
        for row_id in recovered.retried:
            self._log.warning("notification_requeued", outbox_id=row_id)

    async def _refresh_stats(self) -> None:
        # After the claimed rows are on their way: a page never waits on these counts.
        now = self._clock()
        if now >= self._stats_at:
            self._stats_at = now + STATS_EVERY
            self.metrics.store_gauges.stats = await self.store.stats()

    def _spawn(self, row: OutboxRow) -> None:
        task = asyncio.create_task(self._in_lane(row), name=f"deliver-{row.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _hold(self, row: OutboxRow) -> None:
        self._lanes[row.channel] = self._lanes.get(row.channel, 0) + 1
        if row.recipient is not None:
            person = (row.channel, row.recipient)
            self._people[person] = self._people.get(person, 0) + 1

    async def _in_lane(self, row: OutboxRow) -> None:
        """Deliver one claimed row, which holds its lane slot; a freed slot wakes the claims."""
        person = None if row.recipient is None else (row.channel, row.recipient)
        try:
            await self._deliver(row)
        except StoreUnavailable as exc:  # the lease runs out and the row is taken up again
            self._log.warning("outbox_store_unavailable", error=str(exc), outbox_id=row.id)
        except Exception:
            self._log.exception("outbox_delivery_failed", outbox_id=row.id)
        finally:
            self._lanes[row.channel] -= 1
            if person is not None:
                self._people[person] -= 1
                if not self._people[person]:
                    del self._people[person]
            self.wake()

    async def _deliver(self, row: OutboxRow) -> None:
        channel = self.channels.get(row.channel)
        if channel is None:
            error = DeliveryError(f"channel {row.channel!r} is not configured", retryable=False)
            await self._record(row, after_failure(row, error, self._clock(), self.retry, 0.0))
            return
        message = notification(
            row.id, row.incident_id, row.body, self._recipient(row.recipient), self._links
        )
        if row.at_most_once:
            # Committed right before the provider call: without this mark, a row found
            # `sending` later provably never reached the provider.
            if not await self.store.start(row, self._clock()):
                self._log.warning("notification_claim_lost", outbox_id=row.id)
                return
            if row.started_at is not None and not channel.reconciles:
                error = DeliveryError("an earlier request may have been sent", retryable=True)
                result = after_failure(row, error, self._clock(), self.retry, 0.0, True)
                await self._record(row, result)
                return
        call = (
            channel.send(message)
            if row.started_at is None or not row.at_most_once
            else channel.resend(message, row.started_at)
        )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.delivery.send_timeout):
                receipt = await call
        except Exception as exc:  # the task boundary: every failure is recorded, none is lost
            self.metrics.send_seconds.labels(row.channel).observe(time.perf_counter() - started)
            error = classify(exc, self.delivery.send_timeout)
            # Only a channel's own DeliveryError can prove the request never left.
            ambiguous = error.maybe_sent or not isinstance(exc, DeliveryError)
            result = after_failure(
                row, error, self._clock(), self.retry, self._jitter(), ambiguous, channel.reconciles
            )
            await self._record(row, result)
            return
        self.metrics.send_seconds.labels(row.channel).observe(time.perf_counter() - started)
        now = self._clock()
        checked = row.at_most_once and row.started_at is not None
        if checked:
            self.metrics.reconciled.labels(row.channel, "found" if receipt.found else "sent").inc()
        note = f"the provider already had {receipt.found}: not sent again" if receipt.found else ""
        result = Finish("sent", now, note, provider_id=receipt.provider_id, thread=receipt.thread)
        await self._record(row, result)

    def _recipient(self, person: str | None) -> Recipient | None:
        if person is None:
            return None
        return self.people.get(person) or Recipient(id=person, name=person)

    async def _record(self, row: OutboxRow, result: Finish) -> None:
        kept = await self.store.finish(row, result)
        context = {
            "outbox_id": row.id,
            "incident_id": row.incident_id,
            "channel": row.channel,
            "kind": row.kind,
            "attempt": row.attempts,
        }
        if not kept:
            self._log.warning("notification_claim_lost", **context)
            return
        outcome = "retry" if result.outcome == "pending" else result.outcome
        self.metrics.notifications.labels(row.channel, outcome).inc()
        if result.fallback is not None:
            self.metrics.fallbacks.labels(row.channel, result.outcome).inc()
        if result.outcome == "sent":
            self.metrics.delivery_latency.labels(row.channel).observe(
                max(0.0, result.now - row.created_at)
            )
            self._log.info("notification_sent", provider_id=result.provider_id, **context)
        elif result.outcome == "pending":
            self._log.warning(
                "notification_retry",
                reason=result.detail,
                next_attempt_at=result.next_attempt_at,
                **context,
            )
        else:
            event = "notification_unknown" if result.outcome == "unknown" else "notification_failed"
            self._log.error(event, status=result.outcome, reason=result.detail, **context)
        if result.fallback is not None:
            self.wake()
