"""Evaluate an expression at every evaluation step of a range through `query_range`, chunked."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.backtest.statemachine import Labels
from rules.promapi import Prometheus

# Prometheus refuses a range query of more than 11 000 points per series; stay below it.
MAX_POINTS = 10_000


@dataclass(frozen=True)
class Grid:
    """The evaluation timestamps: start, start + step, … up to end."""

    start: float
    end: float
    step: float

    def times(self) -> list[float]:
        """Return every evaluation timestamp, rounded to the millisecond as Prometheus does."""
        count = int((self.end - self.start) // self.step) + 1
        return [round(self.start + i * self.step, 3) for i in range(count)]

    def chunks(self, max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
        """Split the grid into (start, end) pieces of at most `max_points` steps each."""
        times = self.times()
        return [
            (times[i], times[min(i + max_points, len(times)) - 1])
            for i in range(0, len(times), max_points)
        ]


@dataclass
class Evaluation:
    """An expression's answer over a grid: per label set, the value at each step it returned."""

    values: dict[Labels, dict[float, float]] = field(default_factory=dict)

    def present(self) -> dict[Labels, set[float]]:
        """Return per label set the steps at which the expression returned it."""
        return {labels: set(points) for labels, points in self.values.items()}


def identity(labels: dict[str, str]) -> Labels:
    """Return an alert's identifying labels for a result series: all but the metric name."""
    return tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))


def evaluate(prometheus: Prometheus, expr: str, grid: Grid) -> Evaluation:
    """Run `expr` over the grid, one query_range per chunk, merging the chunks' series."""
    out = Evaluation()
    for start, end in grid.chunks():
        for series in prometheus.query_range(expr, start, end, grid.step):
            points = out.values.setdefault(identity(series.labels), {})
            points.update((round(t, 3), v) for t, v in series.points)
    return out
