"""Deliver outbox rows through channels: retries with backoff and jitter, fallback, metrics.

Delivery rule: at-least-once for email and chat (a row found `sending` past its deadline is
sent again), at-most-once for channels flagged `at_most_once` (SMS): the row is committed as
`sending` before the provider is called, and a row found `sending` after a crash, or whose send
timed out, is marked `unknown` and never resent.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from receiver.channels import Channel, DeliveryError, Recipient
from receiver.config import DeliveryConfig, RateLimitConfig
from receiver.metrics import ReceiverMetrics
from receiver.notify import LinkFields, notification
from receiver.store.base import (
    Fallback,
    Finish,
    IntakeRules,
    OutboxRow,
    Store,
    StoreUnavailable,
)

LEASE_MARGIN = 30.0  # seconds past the send timeout before another worker may take a row over


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
) -> Finish:
    """Return the row's next state after a failed attempt (pure)."""
    if ambiguous and row.at_most_once:
        # The provider may have accepted it: resending could page twice.
        return Finish("unknown", now, f"{error.reason}; not resent (at-most-once channel)")
    in_time = now - row.created_at < rules.give_up_after
    if error.retryable and row.attempts < rules.max_attempts and in_time:
        delay = backoff(row.attempts, rules.backoff_initial, rules.backoff_max, jitter)
        delay = max(delay, error.retry_after or 0.0)
        return Finish("pending", now, error.reason, next_attempt_at=now + delay)
    why = (
        error.reason
        if not error.retryable
        else (f"{error.reason} (gave up after {row.attempts} attempts)")
    )
    fallback = rules.fallback
    if fallback is None or row.fallback_of is not None or fallback.channel == row.channel:
        return Finish("failed", now, why)
    return Finish("failed", now, f"{why}; falling back to {fallback.channel}", fallback=fallback)


class OutboxWorker:
    """Claim due outbox rows and deliver them; one task per receiver process."""

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
        self.store, self.channels, self.people = store, channels, people
        self._links = links  # signed ack/resolve links and SMS reply codes, when configured
        self.delivery, self.rate, self.metrics = delivery, rate, metrics
        self._log, self._clock, self._jitter = logger, clock, jitter
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
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Ask the worker to look for due rows now (after an intake committed)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until stopped or cancelled."""
        while not self._stopping:
            try:
                busy = await self.run_once()
            except StoreUnavailable as exc:
                self._log.warning("outbox_store_unavailable", error=str(exc))
                busy = 0
            except Exception:
                self._log.exception("outbox_loop_failed")
                busy = 0
            if busy < self.delivery.concurrency and not self._stopping:
                await self._idle()

    async def stop(self, task: asyncio.Task[None], grace: float) -> None:
        """Let in-flight sends finish (up to `grace` seconds), then cancel the task."""
        self._stopping = True
        self._wake.set()
        try:
            async with asyncio.timeout(grace):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _idle(self) -> None:
        try:
            async with asyncio.timeout(self.delivery.poll_interval):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    async def run_once(self) -> int:
        """Recover expired claims, deliver one batch of due rows; return how many were sent."""
        now = self._clock()
        recovered = await self.store.recover(now)
        for row_id in recovered.unknown:
            self._log.error(
                "notification_unknown",
                outbox_id=row_id,
                reason="found in sending after a crash; not resent",
            )
            self.metrics.notifications.labels("?", "unknown").inc()
        for row_id in recovered.retried:
            self._log.warning("notification_requeued", outbox_id=row_id)
        lease = self.delivery.send_timeout + LEASE_MARGIN
        rows = await self.store.claim(
            now, self.delivery.concurrency, lease, self.rate.max_messages, self.rate.window
        )
        await asyncio.gather(*(self._deliver(row) for row in rows))
        self.metrics.store_gauges.stats = await self.store.stats()
        return len(rows)

    async def _deliver(self, row: OutboxRow) -> None:
        channel = self.channels.get(row.channel)
        if channel is None:
            error = DeliveryError(f"channel {row.channel!r} is not configured", retryable=False)
            await self._record(row, after_failure(row, error, self._clock(), self.retry, 0.0))
            return
        message = notification(
            row.id, row.incident_id, row.body, self._recipient(row.recipient), self._links
        )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.delivery.send_timeout):
                receipt = await channel.send(message)
        except Exception as exc:  # the task boundary: every failure is recorded, none is lost
            self.metrics.send_seconds.labels(row.channel).observe(time.perf_counter() - started)
            error = classify(exc, self.delivery.send_timeout)
            ambiguous = isinstance(exc, TimeoutError)
            result = after_failure(row, error, self._clock(), self.retry, self._jitter(), ambiguous)
            await self._record(row, result)
            return
        self.metrics.send_seconds.labels(row.channel).observe(time.perf_counter() - started)
        now = self._clock()
        await self._record(
            row, Finish("sent", now, provider_id=receipt.provider_id, thread=receipt.thread)
        )

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
            self._log.error(
                "notification_failed", status=result.outcome, reason=result.detail, **context
            )
        if result.fallback is not None:
            self.wake()
