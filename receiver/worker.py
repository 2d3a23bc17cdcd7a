"""The periodic-worker base every background loop of the receiver runs on.

A worker defines `run_once` (one pass, driven by hand in tests with a fake clock) and, when
the loop must do something else per pass, `tick`. The base owns the loop: sleep `interval`
or until woken or until the next-due hint, back off while the store (or another dependency
named in `outages`) is down, log an outage once and its end once, log an unexpected failure
with its traceback at most once per `CRASH_LOG_EVERY` seconds, and keep going. `stop` lets a
pass finish within a grace period (the outbox waits for its in-flight sends) before it cancels.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, ClassVar

from receiver.metrics import WorkerMetrics
from receiver.store import StoreUnavailable

BACKOFF_MAX = 10.0  # seconds between passes at most while a dependency is down (or interval)
CRASH_LOG_EVERY = 60.0  # a pass failing the same way each time logs one traceback a minute


class PeriodicWorker:
    """Run `tick` until stopped; subclasses set `name` and implement `run_once`."""

    name: ClassVar[str]  # the metrics' `worker` label and the default log event prefix
    outages: ClassVar[tuple[type[BaseException], ...]] = (StoreUnavailable,)
    outage_level: ClassVar[str] = "warning"
    # Event names default to `<name>_store_unavailable`, `<name>_loop_failed`, `<name>_recovered`;
    # workers whose names are documented otherwise override them.
    outage_event: ClassVar[str] = ""
    crash_event: ClassVar[str] = ""
    recovered_event: ClassVar[str] = ""

    def __init__(self, interval: float, logger: Any, clock: Callable[[], float]) -> None:
        self.interval = interval
        self._log, self._clock = logger, clock
        self._wake = asyncio.Event()
        self._sleeping_until: float | None = None  # None: in a pass, or not started
        self._stopping = False
        self._failures = 0  # consecutive passes that hit an outage
        self._crash_logged_at = float("-inf")
        self._crashes_unlogged = 0

    def wake(self) -> None:
        """Start the next pass now instead of after the sleep."""
        self._wake.set()

    def wake_by(self, at: float) -> None:
        """Make sure a pass starts by `at` (epoch seconds): wake now only if asleep past it.

        Intake sets timers many times a second under load; a worker that already means to
        wake earlier need not read the store again for each.
        """
        if self._sleeping_until is None or at < self._sleeping_until:
            self._wake.set()

    async def run_once(self) -> Any:
        """Do one pass (tests call this with a fake clock)."""
        raise NotImplementedError

    async def tick(self) -> bool:
        """One pass of the loop; return True when more work is waiting (no sleep)."""
        await self.run_once()
        return False

    async def next_due(self) -> float | None:
        """Return when the next known piece of work is due (epoch seconds), if known."""
        return None

    def failed(self, exc: BaseException) -> None:
        """Hook for a worker's own failure counter (called on every failed pass)."""

    async def drain(self) -> None:
        """Finish work the passes left running (called when stopped gracefully)."""

    async def abandon(self) -> None:
        """Cancel work still running when the loop ends (stopped past its grace, or cancelled)."""

    async def run(self, metrics: WorkerMetrics | None = None) -> None:
        """Loop until stopped or cancelled; no exception of a pass ends the loop."""
        if metrics is not None:
            metrics.interval.labels(self.name).set(self.interval)
            # Counted from the start: a first pass that hangs or keeps failing is a stall too.
            metrics.last_success.labels(self.name).set(self._clock())
        try:
            while not self._stopping:
                self._wake.clear()
                again = await self._pass(metrics)
                if not (again or self._stopping):
                    await self._sleep()
            await self.drain()
        finally:
            await self.abandon()

    async def stop(self, task: asyncio.Task[None], grace: float = 0.0) -> None:
        """Let the running pass (and `drain`) finish up to `grace` seconds, then cancel."""
        self._stopping = True
        self._wake.set()
        if grace > 0:
            try:
                async with asyncio.timeout(grace):
                    await asyncio.shield(task)
            except TimeoutError:
                pass
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _pass(self, metrics: WorkerMetrics | None) -> bool:
        try:
            again = await self.tick()
        except self.outages as exc:
            self._outage(exc)
            self.failed(exc)
            if metrics is not None:
                metrics.runs.labels(self.name, "unavailable").inc()
            return False
        except Exception as exc:  # the task boundary: log with the traceback, keep looping
            self._crash()
            self.failed(exc)
            if metrics is not None:
                metrics.runs.labels(self.name, "error").inc()
            return False
        if self._failures:
            self._log.info(self.recovered_event or f"{self.name}_recovered", after=self._failures)
            self._failures = 0
        if metrics is not None:
            metrics.runs.labels(self.name, "ok").inc()
            metrics.last_success.labels(self.name).set(self._clock())
        return again

    def _outage(self, exc: BaseException) -> None:
        self._failures += 1
        if self._failures == 1:  # once per outage: the recovery line closes it
            event = self.outage_event or f"{self.name}_store_unavailable"
            getattr(self._log, self.outage_level)(event, error=str(exc))

    def _crash(self) -> None:
        now = time.monotonic()
        if now - self._crash_logged_at < CRASH_LOG_EVERY:
            self._crashes_unlogged += 1
            return
        event = self.crash_event or f"{self.name}_loop_failed"
        self._log.exception(event, suppressed=self._crashes_unlogged)
        self._crash_logged_at, self._crashes_unlogged = now, 0

    async def _sleep(self) -> None:
        delay = self.interval
        if self._failures:
            # The exponent is capped: a days-long outage must not overflow the float.
            backoff = self.interval * 2.0 ** min(self._failures - 1, 16)
            delay = min(backoff, max(self.interval, BACKOFF_MAX))
        else:
            due = await self._next_due()
            if due is not None:
                delay = min(delay, max(0.0, due - self._clock()))
        self._sleeping_until = self._clock() + delay
        try:
            async with asyncio.timeout(delay):
                await self._wake.wait()
        except TimeoutError:
            pass
        finally:
            self._sleeping_until = None

    async def _next_due(self) -> float | None:
        try:
            return await self.next_due()
        except self.outages:
            return None  # the next pass finds the outage and backs off
        except Exception:  # a hint is only a hint: sleep the interval, keep the loop alive
            self._crash()
            return None
