"""The metric catalogue: the `maintwatch_*` names and types rules and dashboards may use."""

from __future__ import annotations

import re

from exporter.collectors.registry import declared_metrics
from maintwatch.metricdef import by_name
from receiver.metricdefs import METRICS as RECEIVER_METRICS

GAUGE, COUNTER, HISTOGRAM = "gauge", "counter", "histogram"

# Derived from what the exporter and the receiver declare, never listed by hand.
METRICS: dict[str, str] = {
    name: metric.type
    for name, metric in by_name((*declared_metrics().values(), *RECEIVER_METRICS)).items()
}

_NAME = re.compile(r"\bmaintwatch_[a-z0-9_]+")
_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")


def series_names(expr: str) -> set[str]:
    """Return the catalogue metric each `maintwatch_*` name in a PromQL expression refers to."""
    names = set()
    for name in _NAME.findall(expr):
        for suffix in _HISTOGRAM_SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name and METRICS.get(base) == HISTOGRAM:
                name = base
        names.add(name)
    return names


def unknown_metrics(expr: str) -> set[str]:
    """Return the `maintwatch_*` names in `expr` that are not in the catalogue."""
    return {n for n in series_names(expr) if n not in METRICS}
