"""The periodic-worker base: outages logged once, failures survived, wake, next-due, stop;
and the app running every configured worker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import structlog
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from receiver.appkeys import METRICS
from receiver.metrics import WorkerMetrics
from receiver.store import StoreUnavailable
from receiver.worker import PeriodicWorker
from tests.conftest import free_port
from tests.receiver._helpers import BASE_CONFIG, register_script, running, wait_for


class Scripted(PeriodicWorker):
    """Fails or succeeds as told, pass by pass."""

    name = "scripted"

    def __init__(self, script: list[str], interval: float = 0.01) -> None:
        super().__init__(interval, structlog.get_logger("test"), time.time)
        self.script, self.passes = script, 0
        self.due: float | None = None

    async def run_once(self) -> None:
        step = self.script[self.passes] if self.passes < len(self.script) else "ok"
        self.passes += 1
        if step == "down":
            raise StoreUnavailable("connection refused")
        if step == "boom":
            raise RuntimeError("a bug")
        if step == "slow":
            await asyncio.sleep(0.2)

    async def next_due(self) -> float | None:
        if self.due == -1:
            raise RuntimeError("a bug in the hint")
        return self.due


async def _run_until(worker: PeriodicWorker, passes: int, metrics: WorkerMetrics) -> None:
    task = asyncio.create_task(worker.run(metrics))
    async with asyncio.timeout(10):
        while worker.passes < passes:  # type: ignore[attr-defined]
            worker.wake()
            await asyncio.sleep(0.005)
    await worker.stop(task)


async def test_an_outage_is_logged_once_and_its_end_once() -> None:
    worker, metrics = Scripted(["down"] * 4), WorkerMetrics(CollectorRegistry())
    with capture_logs() as logs:
        await _run_until(worker, 6, metrics)
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [("scripted_store_unavailable", "warning"), ("scripted_recovered", "info")]
    assert metrics.runs.labels("scripted", "unavailable")._value.get() == 4
    assert metrics.runs.labels("scripted", "ok")._value.get() >= 2
    assert metrics.last_success.labels("scripted")._value.get() > 0


async def test_a_first_pass_that_hangs_shows_its_interval_and_a_stamp_from_the_start() -> None:
    class Hangs(Scripted):
        async def run_once(self) -> None:
            self.passes += 1
            await asyncio.Event().wait()

    worker, metrics = Hangs([], interval=30.0), WorkerMetrics(CollectorRegistry())
    before = time.time()
    task = asyncio.create_task(worker.run(metrics))
    await wait_for(lambda: worker.passes == 1, what="the first pass")
    # The stall alerts compare time() with this stamp: a pass that never ends still ages.
    assert before <= metrics.last_success.labels("scripted")._value.get() <= time.time()
    assert metrics.interval.labels("scripted")._value.get() == 30.0
    assert metrics.runs.labels("scripted", "ok")._value.get() == 0
    await worker.stop(task)


async def test_a_failing_pass_logs_its_traceback_at_most_once_a_minute_and_the_loop_goes_on() -> (
    None
):
    worker, metrics = Scripted(["boom", "boom", "boom"]), WorkerMetrics(CollectorRegistry())
    with capture_logs() as logs:
        await _run_until(worker, 5, metrics)
    assert [e["event"] for e in logs] == ["scripted_loop_failed"]
    assert logs[0]["exc_info"] is True
    assert metrics.runs.labels("scripted", "error")._value.get() == 3


async def test_the_next_due_hint_cuts_the_sleep_short() -> None:
    worker = Scripted([], interval=60)
    worker.due = time.time() + 0.05
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while worker.passes < 2:
            await asyncio.sleep(0.01)
    await worker.stop(task)


async def test_wake_by_wakes_a_sleeping_worker_only_for_an_earlier_time() -> None:
    worker = Scripted([], interval=60)
    worker.due = time.time() + 30
    task = asyncio.create_task(worker.run())
    async with asyncio.timeout(5):
        while worker._sleeping_until is None:
            await asyncio.sleep(0.005)
        worker.wake_by(time.time() + 45)  # it wakes at +30 anyway: no pass now
        await asyncio.sleep(0.1)
        assert worker.passes == 1
        worker.wake_by(time.time() + 10)  # earlier than it planned: a pass reads the store again
        while worker.passes < 2:
            await asyncio.sleep(0.005)
    await worker.stop(task)


async def test_stop_lets_a_pass_finish_within_the_grace_and_cancels_after_it() -> None:
    worker = Scripted(["slow"])
    task = asyncio.create_task(worker.run())
    await asyncio.sleep(0.05)
    await worker.stop(task, grace=5)
    assert task.done()
    assert not task.cancelled()  # the pass ended, then the loop
    late = Scripted(["slow"])
    task = asyncio.create_task(late.run())
    await asyncio.sleep(0.05)
    await late.stop(task, grace=0.01)
    assert task.cancelled()


async def test_a_failing_next_due_hint_is_logged_and_the_loop_goes_on() -> None:
    worker = Scripted([])
    worker.due = -1
    with capture_logs() as logs:
        await _run_until(worker, 3, WorkerMetrics(CollectorRegistry()))
    assert [e["event"] for e in logs] == ["scripted_loop_failed"]


async def test_a_long_outage_backs_off_to_the_cap_without_overflowing() -> None:
    worker = Scripted(["down"] * 3000, interval=0.001)
    task = asyncio.create_task(worker.run())
    worker._failures = 5000  # days of failed passes
    async with asyncio.timeout(5):
        while worker.passes < 3:
            worker.wake()
            await asyncio.sleep(0.005)
    assert not task.done()
    await worker.stop(task)


async def test_the_app_runs_every_configured_worker_and_stops_them_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_script(monkeypatch)
    text = (
        BASE_CONFIG
        + f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
        + "watchdog: {expect_every: 5m, notify: [channel:chat]}\n"
        + f"alertmanager: {{url: 'http://127.0.0.1:{free_port()}', interval: 1h}}\n"
    )
    names = {"outbox", "escalation", "watchdog", "silencer", "retention", "digest"}
    async with running(text, run_worker=True) as rx:
        assert names <= {task.get_name() for task in asyncio.all_tasks()}
        registry = rx.app[METRICS].registry

        def passes(worker: str) -> float:
            labels = {"worker": worker, "outcome": "ok"}
            return registry.get_sample_value("maintwatch_receiver_worker_runs_total", labels) or 0

        await wait_for(lambda: all(passes(n) for n in names - {"silencer"}), what="first passes")
        failed = {"worker": "silencer", "outcome": "unavailable"}  # nothing listens there
        sample = registry.get_sample_value("maintwatch_receiver_worker_runs_total", failed)
        assert sample == 1
    assert not names & {task.get_name() for task in asyncio.all_tasks()}
