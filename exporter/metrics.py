"""Build metric families for one refresh, and merge families from many collector instances."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.samples import Sample

Labels = Mapping[str, str]


class MetricSet:
    """Accumulate samples by family name; every sample carries the instance's base labels.

    A refresh creates one, adds values and returns `families()`; the runtime merges the
    families of all instances so each metric name appears once in the exposition.
    """

    def __init__(self, base_labels: Labels | None = None) -> None:
        self._base = dict(base_labels or {})
        self._families: dict[str, Metric] = {}

    def _family(self, cls: type[Metric], name: str, documentation: str) -> Metric:
        family = self._families.get(name)
        if family is None:
            family = cls(name, documentation, labels=())  # type: ignore[call-arg]
            self._families[name] = family
        return family

    def gauge(self, name: str, documentation: str, value: float, /, **labels: str) -> None:
        """Add a gauge sample."""
        family = self._family(GaugeMetricFamily, name, documentation)
        family.samples.append(Sample(name, {**self._base, **labels}, float(value), None, None))

    def counter(self, name: str, documentation: str, value: float, /, **labels: str) -> None:
        """Add a counter sample; `name` must end in `_total`."""
        if not name.endswith("_total"):
            raise ValueError(f"counter {name} must end in _total")
        family = self._family(CounterMetricFamily, name, documentation)
        family.samples.append(Sample(name, {**self._base, **labels}, float(value), None, None))

    def histogram(
        self,
        name: str,
        documentation: str,
        buckets: Sequence[tuple[float, float]],
        sum_value: float,
        /,
        **labels: str,
    ) -> None:
        """Add a histogram series from cumulative `(upper_bound, count)` pairs ending at +Inf."""
        family = self._family(HistogramMetricFamily, name, documentation)
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
