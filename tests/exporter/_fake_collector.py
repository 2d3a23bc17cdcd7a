"""A controllable collector for runtime, server and CLI tests."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client.core import Metric

from exporter.collectors.base import CollectError, Collector
from exporter.config import InstanceConfig
from exporter.metrics import gauge

EXPECTED = gauge("maintwatch_fake_expected", "Configured expectation.")
VALUE = gauge("maintwatch_fake_value", "Measured value.")


class FakeConfig(InstanceConfig):
    """Config of the fake collector: the value it reports and how it behaves."""

    value: float = 1.0
    expected: float = 42.0


class FakeCollector(Collector[FakeConfig]):
    """Report `value`; tests switch `mode` to fail, hang or succeed."""

    kind = "fake"
    label = "fake"
    config_type = FakeConfig
    metrics = (EXPECTED, VALUE)

    def __init__(self, config: FakeConfig, context: object) -> None:
        super().__init__(config, context)  # type: ignore[arg-type]
        self.mode = "ok"
        self.calls = 0
        self.closed = False

    def static(self) -> Sequence[Metric]:
        ms = self.metric_set()
        ms.add(EXPECTED, self.config.expected)
        return ms.families()

    async def refresh(self) -> Sequence[Metric]:
        self.calls += 1
        if self.mode == "fail":
            raise CollectError("source unavailable")
        if self.mode == "crash":
            raise RuntimeError("unexpected")
        if self.mode == "hang":
            await asyncio.sleep(3600)
        ms = self.metric_set()
        ms.add(VALUE, self.config.value)
        return ms.families()

    async def close(self) -> None:
        self.closed = True
