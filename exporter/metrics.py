"""Metric descriptors, and the metric families one refresh builds from them.

Each metric is declared once, as a module-level `MetricDef` (`maintwatch.metricdef`) beside
the collector that emits it: name, HELP, type and label names live there and nowhere else. The
rules catalogue and the metrics reference are derived from the declarations, and a sample whose
labels differ from its declaration is refused where it is added, so a typo fails the first test
that reaches it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample

# The declarations are shared with the receiver; collectors keep importing them from here.
from maintwatch.metricdef import MetricDef as MetricDef
from maintwatch.metricdef import counter as counter
from maintwatch.metricdef import gauge as gauge
from maintwatch.metricdef import histogram as histogram

Labels = Mapping[str, str]

_FAMILIES: dict[str, type[Metric]] = {
    "gauge": GaugeMetricFamily,
    "counter": CounterMetricFamily,
    "histogram": HistogramMetricFamily,
}


class MetricSet:
    """Accumulate samples by family name; every sample carries the instance's base labels.

    A refresh creates one, adds values and returns `families()`; the runtime merges the
    families of all instances so each metric name appears once in the exposition. With
    `declared`, a metric the collector did not declare is refused too.
    """

    def __init__(
        self, base_labels: Labels | None = None, declared: Iterable[MetricDef] | None = None
    ) -> None:
        self._base = dict(base_labels or {})
        self._declared = None if declared is None else frozenset(declared)
        self._families: dict[str, Metric] = {}

    def _family(self, metric: MetricDef, labels: Labels) -> Metric:
        metric.check(labels.keys())
        family = self._families.get(metric.name)
        if family is None:
            if self._declared is not None and metric not in self._declared:
                raise ValueError(f"{metric.name} is not among the collector's declared metrics")
            cls = _FAMILIES[metric.type]
            family = cls(metric.name, metric.help, labels=())  # type: ignore[call-arg]
            self._families[metric.name] = family
        return family

    def add(self, metric: MetricDef, value: float, /, **labels: str) -> None:
        """Add a gauge or counter sample."""
        if metric.type == "histogram":
            raise ValueError(f"{metric.name} is a histogram: use add_histogram")
        family = self._family(metric, labels)
        family.samples.append(
            Sample(metric.name, {**self._base, **labels}, float(value), None, None)
        )

    def add_histogram(
        self,
        metric: MetricDef,
        buckets: Sequence[tuple[float, float]],
        sum_value: float,
        /,
        **labels: str,
    ) -> None:
        """Add a histogram series from cumulative `(upper_bound, count)` pairs ending at +Inf."""
        if metric.type != "histogram":
            raise ValueError(f"{metric.name} is a {metric.type}, not a histogram")
        family = self._family(metric, labels)
        name = metric.name
        full = {**self._base, **labels}
        for bound, count in buckets:
            le = "+Inf" if bound == float("inf") else _format_bound(bound)
            family.samples.append(Sample(f"{name}_bucket", {**full, "le": le}, count, None, None))
        family.samples.append(Sample(f"{name}_count", full, buckets[-1][1], None, None))
        family.samples.append(Sample(f"{name}_sum", full, sum_value, None, None))

    def families(self) -> list[Metric]:
        """Return the families built so far."""
        return list(self._families.values())


def _format_bound(bound: float) -> str:
    return repr(float(bound))


def merge_families(groups: Iterable[Iterable[Metric]]) -> list[Metric]:
    """Merge families with the same name from several instances into one family each."""
    merged: dict[str, Metric] = {}
    for families in groups:
        for family in families:
            target = merged.get(family.name)
            if target is None:
                target = Metric(family.name, family.documentation, family.type, family.unit)
                merged[family.name] = target
            target.samples.extend(family.samples)
    return list(merged.values())
