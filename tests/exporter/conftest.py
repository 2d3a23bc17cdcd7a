"""Exporter test helpers: run a collector once and read its samples like a scrape would."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any

import pytest
import structlog
from prometheus_client import exposition
from prometheus_client.core import Metric

from exporter.collectors.base import Collector, Context
from exporter.metrics import merge_families


class Samples:
    """Samples of one or more refreshes, looked up by name and labels."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = merge_families([list(families)])

    def get(self, name: str, /, **labels: str) -> float | None:
        """Return the value of the sample whose labels include `labels`, or None."""
        for family in self.families:
            for sample in family.samples:
                wanted = all(sample.labels.get(k) == v for k, v in labels.items())
                if sample.name == name and wanted:
                    return float(sample.value)
        return None

    def all(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Return every (labels, value) of the samples called `name`."""
        return [
            (dict(s.labels), float(s.value))
            for f in self.families
            for s in f.samples
            if s.name == name
        ]

    def text(self) -> str:
        """Render the Prometheus text exposition of these samples."""

        class _Reg:
            def __init__(self, fams: list[Metric]) -> None:
                self.fams = fams

            def collect(self) -> Iterable[Metric]:
                return self.fams

        return exposition.generate_latest(_Reg(self.families)).decode()


async def refresh(collector: Collector[Any]) -> Samples:
    """Run one refresh (plus the static families) and return the samples."""
    families = list(collector.static()) + list(await collector.refresh())
    return Samples(families)


def promtool_check(promtool: str, text: str) -> None:
    """Fail the test when `promtool check metrics` reports any problem or warning."""
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    problems = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, problems
    assert not problems, problems


@pytest.fixture
def context(tmp_path: Any) -> Context:
    """Return a collector Context with a real logger and a per-test state dir."""
    return Context(logger=structlog.get_logger("test"), state_dir=str(tmp_path / "state"))
