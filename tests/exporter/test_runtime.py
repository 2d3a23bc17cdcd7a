"""The runtime refreshes in the background, reports failures once and never serves stale data."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from exporter.collectors.base import Context
from exporter.runtime import Runtime
from tests.exporter._fake_collector import FakeCollector, FakeConfig
from tests.exporter.conftest import Samples


def make(name: str = "a", **kw: float) -> FakeCollector:
    return FakeCollector(FakeConfig(name=name, **kw), Context())


async def wait_for(predicate: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_successful_refresh_serves_data_and_self_metrics() -> None:
    rt = Runtime(logger=__import__("structlog").get_logger())
    await rt.apply([(make(value=7), 60, 5)])
    await rt.wait_ready()
    samples = Samples(rt.families())
    assert samples.get("maintwatch_fake_value", fake="a") == 7
    assert samples.get("maintwatch_fake_expected", fake="a") == 42
    assert samples.get("maintwatch_collector_up", collector="fake", name="a") == 1
    assert samples.get("maintwatch_collector_last_success_timestamp_seconds", name="a") > 0
    assert samples.get("maintwatch_build_info") == 1
    assert rt.ready()
    await rt.close()


async def test_failure_drops_measured_series_keeps_static_and_logs_once() -> None:
    rt = Runtime(logger=__import__("structlog").get_logger())
    collector = make()
    await rt.apply([(collector, 60, 5)])
    await rt.wait_ready()
    state = rt.states()[0]
    collector.mode = "fail"
    with capture_logs() as logs:
        for _ in range(3):
            await rt.refresh_once(state)
    samples = Samples(rt.families())
    assert samples.get("maintwatch_fake_value") is None
    assert samples.get("maintwatch_fake_expected", fake="a") == 42
    assert samples.get("maintwatch_collector_up", name="a") == 0
    assert samples.get("maintwatch_collector_errors_total", name="a") == 3
    failures = [e for e in logs if e["event"] == "collector_refresh_failed"]
    assert len(failures) == 1
    assert failures[0]["reason"] == "source unavailable"
    collector.mode = "ok"
    with capture_logs() as logs:
        await rt.refresh_once(state)
    assert [e["event"] for e in logs] == ["collector_recovered"]
    assert Samples(rt.families()).get("maintwatch_collector_up", name="a") == 1
    await rt.close()


async def test_hanging_collector_times_out_without_stalling_others() -> None:
    rt = Runtime(logger=__import__("structlog").get_logger())
    slow, fast = make("slow"), make("fast", value=3)
    slow.mode = "hang"
    await rt.apply([(slow, 60, 0.2), (fast, 60, 5)])
    await rt.wait_ready()
    samples = Samples(rt.families())
    assert samples.get("maintwatch_collector_up", name="slow") == 0
    assert samples.get("maintwatch_fake_value", fake="fast") == 3
    assert rt.states()[1].last_error == "timed out after 0.2s"
    await rt.close()


async def test_unexpected_exception_is_reported_not_raised() -> None:
    rt = Runtime(logger=__import__("structlog").get_logger())
    collector = make()
    collector.mode = "crash"
    with capture_logs() as logs:
        await rt.apply([(collector, 60, 5)])
        await rt.wait_ready()
    assert rt.states()[0].last_error == "RuntimeError: unexpected"
    assert logs[0]["event"] == "collector_refresh_failed"
    await rt.close()


async def test_background_refresh_follows_interval() -> None:
    rt = Runtime(logger=__import__("structlog").get_logger())
    collector = make()
    await rt.apply([(collector, 0.05, 1)])
    await wait_for(lambda: collector.calls >= 3)
    await rt.close()
    assert collector.closed


async def test_apply_keeps_unchanged_instances_and_replaces_changed_ones() -> None:
    rt = Runtime(logger=__import__("structlog").get_logger())
    first = make("a")
    other = make("b")
    await rt.apply([(first, 60, 5), (other, 60, 5)])
    await rt.wait_ready()
    same_again = make("a")
    changed = make("b", value=9)
    await rt.apply([(same_again, 60, 5), (changed, 60, 5)])
    await rt.wait_ready()
    kept = {s.key: s.collector for s in rt.states()}
    assert kept[("fake", "a")] is first
    assert same_again.closed
    assert kept[("fake", "b")] is changed
    assert other.closed
    await rt.apply([])
    assert rt.states() == []
    assert first.closed
    await rt.close()


class GatedCollector(FakeCollector):
    """A refresh that waits on a future the test completes at a chosen moment."""

    def __init__(self, swallow_cancels: int = 0) -> None:
        super().__init__(FakeConfig(name="gated"), Context())
        self.gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.entered = asyncio.Event()
        self.swallow_cancels = swallow_cancels

    async def refresh(self):  # type: ignore[no-untyped-def]
        self.entered.set()
        if self.swallow_cancels == 0:
            await self.gate
            return await super().refresh()
        while True:
            try:
                await asyncio.shield(self.gate)
                return await super().refresh()
            except asyncio.CancelledError:
                if self.swallow_cancels == 0:
                    raise
                self.swallow_cancels -= 1  # like a client library that eats one cancel


async def test_close_is_not_lost_when_a_refresh_completes_in_the_same_turn() -> None:
    # On Python 3.11 asyncio.wait_for returned the inner result here and dropped the cancel,
    # so close() waited forever on a refresh loop that kept running (a CI hang).
    rt = Runtime(logger=__import__("structlog").get_logger())
    collector = GatedCollector()
    await rt.apply([(collector, 0.01, 5)])
    await collector.entered.wait()
    collector.gate.set_result(None)  # the refresh can finish on the next turn...
    async with asyncio.timeout(10):
        await rt.close()  # ...which is the turn its cancel lands in
    assert collector.closed
    assert rt.states() == []


async def test_close_finishes_even_if_a_collector_swallows_a_cancel() -> None:
    rt = Runtime(logger=__import__("structlog").get_logger())
    collector = GatedCollector(swallow_cancels=1)
    await rt.apply([(collector, 60, 30)])
    await collector.entered.wait()
    async with asyncio.timeout(10):
        await rt.close()
    assert collector.closed


async def test_a_refresh_loop_that_ignores_every_cancel_is_left_behind_and_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("exporter.runtime.STOP_ATTEMPTS", 2)
    rt = Runtime(logger=__import__("structlog").get_logger())
    collector = GatedCollector(swallow_cancels=10**6)
    await rt.apply([(collector, 60, 3600)])
    await collector.entered.wait()
    orphan = rt._tasks[("fake", "gated")]
    with capture_logs() as logs:
        async with asyncio.timeout(20):
            await rt.close()
    assert [e["event"] for e in logs] == ["collector_stop_abandoned"]
    assert collector.closed
    assert not orphan.done()
    collector.swallow_cancels = 0  # now it listens: end it so the test leaves no task behind
    orphan.cancel()
    await asyncio.gather(orphan, return_exceptions=True)
