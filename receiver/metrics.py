"""`maintwatch_receiver_*` metrics in a registry owned by one app (never the global one).

Names, HELP texts and labels are declared in `receiver.metricdefs`; this module turns those
declarations into client objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from maintwatch.metricdef import Kind, MetricDef
from receiver import metricdefs as m
from receiver.store.base import STATES, Stats

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def _expect(metric: MetricDef, kind: Kind) -> None:
    if metric.type != kind:
        raise ValueError(f"{metric.name} is declared a {metric.type}, not a {kind}")


def make_counter(metric: MetricDef, registry: CollectorRegistry) -> Counter:
    """Register the declared counter `metric` in `registry`."""
    _expect(metric, "counter")
    return Counter(metric.name, metric.help, metric.labels, registry=registry)


def make_gauge(metric: MetricDef, registry: CollectorRegistry) -> Gauge:
    """Register the declared gauge `metric` in `registry`."""
    _expect(metric, "gauge")
    return Gauge(metric.name, metric.help, metric.labels, registry=registry)


def make_histogram(
    metric: MetricDef,
    registry: CollectorRegistry,
    buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
) -> Histogram:
    """Register the declared histogram `metric` in `registry`."""
    _expect(metric, "histogram")
    return Histogram(metric.name, metric.help, metric.labels, buckets=buckets, registry=registry)


def _family(metric: MetricDef, value: float | None = None) -> GaugeMetricFamily:
    _expect(metric, "gauge")
    return GaugeMetricFamily(metric.name, metric.help, value=value, labels=metric.labels or None)


class _StoreGauges(Collector):
    """Serve the last store statistics; collect() does no I/O (the worker refreshes them)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.stats: Stats | None = None
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        stats = self.stats or Stats()
        incidents = _family(m.INCIDENTS)
        for state in STATES:
            incidents.add_metric([state], stats.incidents.get(state, 0))
        yield incidents
        depth = _family(m.OUTBOX_MESSAGES)
        for status in ("pending", "sending", "sent", "failed", "unknown"):
            depth.add_metric([status], stats.outbox.get(status, 0))
        yield depth
        oldest = stats.oldest_pending
        yield _family(
            m.OUTBOX_OLDEST_PENDING_AGE_SECONDS,
            0.0 if oldest is None else max(0.0, self._clock() - oldest),
        )


# How many webhooks wait to be applied and since when (None: none waits).
Waiting = tuple[int, float | None]


class _IntakeGauges(Collector):
    """Serve the inbox backlog from `waiting` (no I/O); zero when webhooks apply in the request."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.waiting: Callable[[], Waiting] = lambda: (0, None)
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        count, oldest = self.waiting()
        yield _family(m.INTAKE_PENDING, count)
        age = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
        yield _family(m.INTAKE_OLDEST_PENDING_AGE_SECONDS, age)


class WorkerMetrics:
    """Passes of every worker by outcome, its last good pass and its interval, defined once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = make_counter(m.WORKER_RUNS_TOTAL, registry)
        self.last_success = make_gauge(m.WORKER_LAST_SUCCESS_TIMESTAMP_SECONDS, registry)
        self.interval = make_gauge(m.WORKER_INTERVAL_SECONDS, registry)


WEBHOOK_OUTCOMES = (
    "processed",
    "unchanged",
    "accepted",
    "apply_failed",
    "watchdog",
    "bad_request",
    "unauthorized",
    "too_large",
    "overloaded",
    "unavailable",
    "aborted",
    "error",
)
ALERT_STATUSES = ("firing", "resolved")
INCIDENT_ACTIONS = ("open", "update", "refresh", "resolve", "marks", "none")


class Children:
    """A counter's children, bound once per label value.

    `.labels()` takes a lock and builds a key on every call; the webhook path pays for a dict
    lookup instead.
    """

    def __init__(self, metric: Counter, values: tuple[str, ...]) -> None:
        self._metric = metric
        self._bound = {value: metric.labels(value) for value in values}

    def __getitem__(self, value: str) -> Counter:
        child = self._bound.get(value)
        if child is None:  # a value the list above does not know yet: bound on first use
            child = self._bound[value] = self._metric.labels(value)
        return child


class ReceiverMetrics:
    """The receiver's metrics."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.webhooks = make_counter(m.WEBHOOKS_TOTAL, registry)
        self.webhook_seconds = make_histogram(
            m.WEBHOOK_DURATION_SECONDS, registry, _LATENCY_BUCKETS
        )
        self.alerts = make_counter(m.ALERTS_RECEIVED_TOTAL, registry)
        self.truncated = make_counter(m.ALERTS_TRUNCATED_TOTAL, registry)
        self.incident_changes = make_counter(m.INCIDENT_CHANGES_TOTAL, registry)
        self.notifications = make_counter(m.NOTIFICATIONS_TOTAL, registry)
        self.fallbacks = make_counter(m.NOTIFICATION_FALLBACKS_TOTAL, registry)
        self.recovered = make_counter(m.OUTBOX_RECOVERED_TOTAL, registry)
        self.reconciled = make_counter(m.NOTIFICATIONS_RECONCILED_TOTAL, registry)
        self.delivery_latency = make_histogram(
            m.DELIVERY_LATENCY_SECONDS, registry, _DELIVERY_BUCKETS
        )
        self.send_seconds = make_histogram(m.SEND_DURATION_SECONDS, registry, _LATENCY_BUCKETS)
        self.intake_apply_failures = make_counter(m.INTAKE_APPLY_FAILURES_TOTAL, registry)
        self.intake_lag = make_gauge(m.INTAKE_LAG_SECONDS, registry)
        self.workers = WorkerMetrics(self.registry)
        self.webhook_outcomes = Children(self.webhooks, WEBHOOK_OUTCOMES)
        self.alert_statuses = Children(self.alerts, ALERT_STATUSES)
        self.incident_actions = Children(self.incident_changes, INCIDENT_ACTIONS)
        self.store_gauges = _StoreGauges(clock)
        self.registry.register(self.store_gauges)
        self.intake_gauges = _IntakeGauges(clock)
        self.registry.register(self.intake_gauges)
