"""A metric declaration: name, HELP, type and labels, written once beside the code that emits it.

Both services declare their metrics with these, so the rules catalogue, the metrics reference
and the label check read one kind of declaration. No client library is imported here: the
rules and the docs tests read the declarations without loading either service.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["gauge", "counter", "histogram"]


@dataclass(frozen=True)
class MetricDef:
    """One exposed metric: its name, HELP text, type, and the labels each sample carries.

    `labels` are the sample's own labels; the exporter's instance label (`backup`, `target`…)
    comes from the collector and is not repeated here. `optional` labels may be absent (a finer
    split that a config option turns on).
    """

    name: str
    help: str
    type: Kind
    labels: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    _required: frozenset[str] = field(init=False, repr=False, compare=False)
    _allowed: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if (self.type == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters, and only counters, end in _total")
        object.__setattr__(self, "_required", frozenset(self.labels))
        object.__setattr__(self, "_allowed", frozenset(self.labels + self.optional))

    def check(self, labels: AbstractSet[str]) -> None:
        """Raise ValueError unless `labels` are exactly the declared ones."""
        if not self._required <= labels <= self._allowed:
            raise ValueError(
                f"{self.name}: labels {sorted(labels)}, declared {sorted(self._allowed)}"
                + (f" of which {sorted(self.optional)} optional" if self.optional else "")
            )


def gauge(name: str, help: str, *labels: str, optional: tuple[str, ...] = ()) -> MetricDef:
    """Declare a gauge."""
    return MetricDef(name, help, "gauge", labels, optional)


def counter(name: str, help: str, *labels: str) -> MetricDef:
    """Declare a counter (its name ends in `_total`)."""
    return MetricDef(name, help, "counter", labels)


def histogram(name: str, help: str, *labels: str) -> MetricDef:
    """Declare a histogram (`_bucket`, `_count` and `_sum` series)."""
    return MetricDef(name, help, "histogram", labels)


def by_name(metrics: Iterable[MetricDef]) -> dict[str, MetricDef]:
    """Return the declarations keyed by name, in order.

    A metric emitted from two places may be declared once and listed twice; two different
    declarations of one name raise ValueError (one family would carry two HELPs).
    """
    out: dict[str, MetricDef] = {}
    for metric in metrics:
        if out.setdefault(metric.name, metric) != metric:
            raise ValueError(f"{metric.name} is declared twice, differently")
    return out
