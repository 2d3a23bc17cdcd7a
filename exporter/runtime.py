"""Refresh every collector instance in the background and keep the latest snapshot.

A scrape reads `Runtime.exposition()`, which never waits on I/O. Each instance runs in its own
task on its own interval under its own timeout; a failure marks it down, logs once, and drops
its measured series while keeping what config alone says (`Collector.static`).
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import Metric

from exporter.collectors.base import CollectError, Collector
from exporter.exposition import Rendered, encode, render
from exporter.metrics import MetricSet, counter, gauge, merge_families
from maintwatch import __version__

BUILD_INFO = gauge(
    "maintwatch_build_info",
    "Build information of the maintwatch exporter.",
    "version",
    "python_version",
)
COLLECTOR_UP = gauge(
    "maintwatch_collector_up",
    "1 if the collector instance's last refresh succeeded.",
    "collector",
    "name",
)
COLLECTOR_DURATION_SECONDS = gauge(
    "maintwatch_collector_duration_seconds",
    "Time the collector instance's last refresh took.",
    "collector",
    "name",
)
COLLECTOR_LAST_SUCCESS_TIMESTAMP_SECONDS = gauge(
    "maintwatch_collector_last_success_timestamp_seconds",
    "Unix time of the collector instance's last successful refresh (0 if never).",
    "collector",
    "name",
)
COLLECTOR_ERRORS_TOTAL = counter(
    "maintwatch_collector_errors_total",
    "Failed refreshes of the collector instance.",
    "collector",
    "name",
)
SELF_METRICS = (
    BUILD_INFO,
    COLLECTOR_UP,
    COLLECTOR_DURATION_SECONDS,
    COLLECTOR_LAST_SUCCESS_TIMESTAMP_SECONDS,
    COLLECTOR_ERRORS_TOTAL,
)

STOP_ATTEMPTS = 10  # cancels, a second apart, before a refresh loop that ignores them is left
CLOSE_TIMEOUT = 5.0  # seconds a collector's close() may take before it is left behind


@dataclass
class InstanceState:
    """What the runtime knows about one instance; read by scrapes and the index page."""

    collector: Collector[Any]
    interval: float
    timeout: float
    up: bool = False
    refreshed: bool = False
    duration: float = 0.0
    last_success: float = 0.0
    errors: int = 0
    last_error: str = ""
    families: Sequence[Metric] = field(default_factory=tuple)
    # Sample lines rendered when the refresh finished, so a scrape only joins strings.
    rendered: Sequence[Rendered] = field(default_factory=tuple)
    static_rendered: Sequence[Rendered] = field(default_factory=tuple)

    @property
    def key(self) -> tuple[str, str]:
        """Return (collector type, instance name)."""
        return self.collector.kind, self.collector.name


Clock = Callable[[], float]


class Runtime:
    """Own the instances' refresh tasks and serve their merged snapshot."""

    def __init__(self, logger: Any, clock: Clock = time.time) -> None:
        self._log = logger
        self._clock = clock
        self._states: dict[tuple[str, str], InstanceState] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._first_round: dict[tuple[str, str], asyncio.Event] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Return a number that changes whenever the snapshot changes (for output caching)."""
        return self._generation

    def states(self) -> list[InstanceState]:
        """Return instance states sorted by (type, name)."""
        return [self._states[k] for k in sorted(self._states)]

    def ready(self) -> bool:
        """Return True once every instance has finished its first refresh (good or bad)."""
        return all(s.refreshed for s in self._states.values())

    async def wait_ready(self) -> None:
        """Wait until every instance has finished a first refresh (wrap in asyncio.timeout)."""
        await asyncio.gather(*(e.wait() for e in self._first_round.values()))

    async def apply(self, wanted: Sequence[tuple[Collector[Any], float, float]]) -> None:
        """Run exactly `wanted` (collector, interval, timeout); keep unchanged instances running.

        An instance is kept when its type, name, config and timing are unchanged, so counters
        it accumulates (log lines, failed jobs, restarts) survive a reload.
        """
        new_keys = {(c.kind, c.name) for c, _, _ in wanted}
        for key in [k for k in self._states if k not in new_keys]:
            await self._stop(key)
        for collector, interval, timeout in wanted:
            key = (collector.kind, collector.name)
            old = self._states.get(key)
            if (
                old is not None
                and old.collector.config == collector.config
                and (old.interval, old.timeout) == (interval, timeout)
            ):
                await collector.close()
                continue
            if old is not None:
                await self._stop(key)
            self._start(InstanceState(collector, interval, timeout))
        self._changed()

    def _start(self, state: InstanceState) -> None:
        state.collector.timeout = state.timeout
        state.static_rendered = render(state.collector.static())
        self._states[state.key] = state
        self._first_round[state.key] = asyncio.Event()
        self._tasks[state.key] = asyncio.create_task(
            self._loop(state), name=f"refresh:{state.key[0]}:{state.key[1]}"
        )

    async def _stop(self, key: tuple[str, str]) -> None:
        task = self._tasks.pop(key, None)
        for _ in range(STOP_ATTEMPTS):
            if task is None or task.done():
                break
            # A collector's client library may swallow a cancel; keep asking, so a reload or
            # shutdown never waits forever on one instance.
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        else:
            assert task is not None
            self._log.error("collector_stop_abandoned", collector=key[0], name=key[1])
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved: a refresh loop only ends by cancellation
        state = self._states.pop(key, None)
        self._first_round.pop(key, None)
        if state is not None:
            try:
                # A close that waits on a stuck thread or a dead server is left behind too.
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await state.collector.close()
            except TimeoutError:
                self._log.error("collector_close_abandoned", collector=key[0], name=key[1])

    async def close(self) -> None:
        """Cancel and await every refresh task, then close collectors (all at once)."""
        await asyncio.gather(*(self._stop(key) for key in list(self._states)))

    async def _loop(self, state: InstanceState) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self.refresh_once(state)
            self._first_round[state.key].set()
            await asyncio.sleep(max(0.0, state.interval - (loop.time() - started)))

    async def refresh_once(self, state: InstanceState) -> None:
        """Refresh one instance under its timeout and record the outcome."""
        started = time.perf_counter()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for returns the inner result when a
            # cancel lands in the same loop turn as completion, and the swallowed cancel left
            # close() waiting forever on a refresh loop that kept running.
            async with asyncio.timeout(state.timeout):
                families = await state.collector.refresh()
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._failed(state, f"timed out after {state.timeout:g}s", started)
        except CollectError as exc:
            self._failed(state, str(exc), started)
        except Exception as exc:  # task boundary: any failure becomes up 0 and one log line
            self._failed(state, f"{type(exc).__name__}: {exc}", started, exc)
        else:
            state.duration = time.perf_counter() - started
            if not state.up and state.refreshed:
                self._log.info("collector_recovered", collector=state.key[0], name=state.key[1])
            state.up, state.refreshed = True, True
            state.last_success = self._clock()
            state.last_error = ""
            state.families = families
            state.rendered = render(families)
            self._changed()

    def _failed(
        self, state: InstanceState, reason: str, started: float, exc: Exception | None = None
    ) -> None:
        state.duration = time.perf_counter() - started
        state.errors += 1
        # One log line per outage (or when the reason changes), not one per refresh.
        if state.up or not state.refreshed or reason != state.last_error:
            self._log.error(
                "collector_refresh_failed",
                collector=state.key[0],
                name=state.key[1],
                reason=reason,
                exc_info=exc if exc is not None and not isinstance(exc, OSError) else None,
            )
        state.up, state.refreshed = False, True
        state.last_error = reason
        state.families, state.rendered = (), ()
        self._changed()

    def _changed(self) -> None:
        self._generation += 1

    def families(self) -> list[Metric]:
        """Return the snapshot as merged metric families (inspection; scrapes use exposition)."""
        groups: list[Sequence[Metric]] = [self._self_metrics()]
        for state in self.states():
            groups.append(state.collector.static())
            groups.append(state.families)
        return merge_families(groups)

    def exposition(self, openmetrics: bool) -> bytes:
        """Encode the snapshot from the lines rendered at refresh time (see `families`)."""
        groups: list[Sequence[Rendered]] = [render(self._self_metrics())]
        for state in self.states():
            groups.append(state.static_rendered)
            groups.append(state.rendered)
        return encode(groups, openmetrics)

    def _self_metrics(self) -> list[Metric]:
        out = MetricSet(declared=SELF_METRICS)
        out.add(BUILD_INFO, 1, version=__version__, python_version=platform.python_version())
        for state in self.states():
            labels = {"collector": state.key[0], "name": state.key[1]}
            out.add(COLLECTOR_UP, 1 if state.up else 0, **labels)
            out.add(COLLECTOR_DURATION_SECONDS, state.duration, **labels)
            out.add(COLLECTOR_LAST_SUCCESS_TIMESTAMP_SECONDS, state.last_success, **labels)
            out.add(COLLECTOR_ERRORS_TOTAL, state.errors, **labels)
        return out.families()
