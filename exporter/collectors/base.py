"""The collector interface: one instance per configured item, refreshed in the background."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import structlog
from prometheus_client.core import Metric

from exporter.config import InstanceConfig
from exporter.metrics import MetricDef, MetricSet
from exporter.paths import Skipped
from exporter.workers import OneAtATime

C = TypeVar("C", bound=InstanceConfig)

DEFAULT_TIMEOUT = 10.0  # the exporter's default refresh timeout (config `defaults.timeout`)
CLOSE_WAIT = 2.0  # seconds `close()` waits for a blocking call before leaving it behind


class CollectError(Exception):
    """A refresh failed for a reason worth one clear log line (no traceback needed)."""


@dataclass
class Context:
    """What a collector may use besides its config: injected so tests can replace it."""

    logger: Any = field(default_factory=lambda: structlog.get_logger("exporter"))
    state_dir: str | None = None  # where collectors may persist small state (log offsets)
    live_databases: frozenset[str] = frozenset()  # names restore drills must never restore over


class Collector(abc.ABC, Generic[C]):
    """One configured item (a backup set, a database, a TLS target…).

    `refresh()` does the I/O and returns fresh metric families; it is called by the runtime
    on the instance's interval under its timeout, never from a scrape. `static()` returns what
    is known from config alone (expected cadence, retention…): it is served even when the last
    refresh failed, while measured values are dropped rather than served stale.
    """

    kind: ClassVar[str]
    """Config section name and `collector` label value, e.g. `backups`."""

    label: ClassVar[str]
    """Label that carries the instance name on its data series, e.g. `backup`."""

    config_type: ClassVar[type[InstanceConfig]]
    """The pydantic model of one instance in the config section."""

    metrics: ClassVar[tuple[MetricDef, ...]]
    """Every metric `refresh` and `static` emit: the catalogue and the metrics reference are
    built from these, and `metric_set()` refuses any other."""

    other_instance_label: ClassVar[Mapping[MetricDef, str]] = {}
    """Declared metrics whose series name the instance by another label (the reference says so)."""

    def __init__(self, config: C, context: Context) -> None:
        self.config = config
        self.context = context
        self.log = context.logger.bind(collector=self.kind, name=config.name)
        # The runtime replaces this with the effective timeout (defaults applied) when it starts
        # the instance; collectors with deadlines of their own stay under it (`own_deadline`).
        self.timeout = min(config.timeout or DEFAULT_TIMEOUT, config.interval or DEFAULT_TIMEOUT)
        # Blocking file work runs on this kind's own threads, one call per instance at a time.
        self.blocking = OneAtATime(self.kind)

    def own_deadline(self) -> float:
        """Return a deadline a little under the refresh timeout, so the failure is ours."""
        return 0.9 * self.timeout

    @property
    def name(self) -> str:
        """Return the configured instance name."""
        return self.config.name

    def metric_set(self) -> MetricSet:
        """Return a MetricSet whose samples carry this instance's name label."""
        return MetricSet({self.label: self.config.name}, self.metrics)

    def describe(self) -> str:
        """Return one line for people on what the instance reads and how; default none."""
        return ""

    def static(self) -> Sequence[Metric]:
        """Return families known from config alone; default none."""
        return ()

    @abc.abstractmethod
    async def refresh(self) -> Sequence[Metric]:
        """Measure and return families; raise on failure (CollectError for a clear reason)."""

    async def close(self) -> None:
        """Release connections and other resources."""


class SkipLog:
    """Log a listing's skipped entries once per change, not once per refresh."""

    def __init__(self, log: Any, event: str) -> None:
        self._log = log
        self._event = event
        self._last = Skipped()

    def report(self, skipped: Skipped) -> None:
        """Write one warning when the skipped entries changed and some are skipped."""
        if skipped.count and skipped != self._last:
            self._log.warning(self._event, files=skipped.count, example=skipped.example)
        self._last = skipped
