"""`maintwatch_receiver_*` metrics in a registry owned by one app (never the global one)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from receiver.store.base import STATES, Stats

PREFIX = "maintwatch_receiver"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_DELIVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


class _StoreGauges(Collector):
    """Serve the last store statistics; collect() does no I/O (the worker refreshes them)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.stats: Stats | None = None
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        stats = self.stats or Stats()
        incidents = GaugeMetricFamily(
            f"{PREFIX}_incidents", "Incidents by state.", labels=["state"]
        )
        for state in STATES:
            incidents.add_metric([state], stats.incidents.get(state, 0))
        yield incidents
        depth = GaugeMetricFamily(
            f"{PREFIX}_outbox_messages", "Outbox messages by status.", labels=["status"]
        )
        for status in ("pending", "sending", "sent", "failed", "unknown"):
            depth.add_metric([status], stats.outbox.get(status, 0))
        yield depth
        oldest = stats.oldest_pending
        yield GaugeMetricFamily(
            f"{PREFIX}_outbox_oldest_pending_age_seconds",
            "Age of the oldest undelivered outbox message (0 when none).",
            value=0.0 if oldest is None else max(0.0, self._clock() - oldest),
        )


class WorkerMetrics:
    """Passes of every worker by outcome and each worker's last good pass, defined once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            f"{PREFIX}_worker_runs",
            "Background worker passes by worker and outcome (ok, unavailable, error).",
            ["worker", "outcome"],
            registry=registry,
        )
        self.last_success = Gauge(
            f"{PREFIX}_worker_last_success_timestamp_seconds",
            "When each background worker last finished a pass without errors.",
            ["worker"],
            registry=registry,
        )


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
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhooks = Counter(
            f"{PREFIX}_webhooks",
            "Alertmanager webhook requests by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_seconds = Histogram(
            f"{PREFIX}_webhook_duration_seconds",
            "Time to validate and persist a webhook.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.alerts = Counter(
            f"{PREFIX}_alerts_received",
            "Alerts received in webhooks by status.",
            ["status"],
            registry=self.registry,
        )
        self.truncated = Counter(
            f"{PREFIX}_alerts_truncated",
            "Alerts Alertmanager left out (truncatedAlerts).",
            registry=self.registry,
        )
        self.incident_changes = Counter(
            f"{PREFIX}_incident_changes",
            "Incident changes applied by action.",
            ["action"],
            registry=self.registry,
        )
        self.notifications = Counter(
            f"{PREFIX}_notifications",
            "Delivery attempts by channel and outcome.",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.fallbacks = Counter(
            f"{PREFIX}_notification_fallbacks",
            "Messages handed to the fallback channel, by channel and outcome (failed, unknown).",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.recovered = Counter(
            f"{PREFIX}_outbox_recovered",
            "Messages found sending past their lease (a worker died), by what follows: resend"
            " (at least once, or the request never left) or check (it may have left).",
            ["action"],
            registry=self.registry,
        )
        self.reconciled = Counter(
            f"{PREFIX}_notifications_reconciled",
            "At-most-once messages checked with the provider before resending, by result:"
            " found (already there, not sent again) or sent.",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            f"{PREFIX}_delivery_latency_seconds",
            "Time from queueing a notification to its successful delivery.",
            ["channel"],
            buckets=_DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.send_seconds = Histogram(
            f"{PREFIX}_send_duration_seconds",
            "Duration of one channel send call.",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.intake_apply_failures = Counter(
            f"{PREFIX}_intake_apply_failures",
            "Accepted webhooks that failed to apply (kept in the inbox file's inbox_failed table).",
            registry=self.registry,
        )
        self.intake_lag = Gauge(
            f"{PREFIX}_intake_lag_seconds",
            "Seconds the oldest webhook of the last batch this receiver's applier applied waited"
            " between its 200 and its commit (inbox intake; pages wait at least this long).",
            registry=self.registry,
        )
        self.workers = WorkerMetrics(self.registry)
        self.webhook_outcomes = Children(self.webhooks, WEBHOOK_OUTCOMES)
        self.alert_statuses = Children(self.alerts, ALERT_STATUSES)
        self.incident_actions = Children(self.incident_changes, INCIDENT_ACTIONS)
        self.store_gauges = _StoreGauges(clock)
        self.registry.register(self.store_gauges)
