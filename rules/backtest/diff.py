"""Compare the current and proposed rules' firings: added, removed, earlier, later (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from rules.backtest.statemachine import Episode
from rules.backtest.stats import firing_span


@dataclass(frozen=True)
class FiringDiff:
    """How the proposed firings of one rule differ from the current ones."""

    added: int
    removed: int
    earlier: int
    later: int


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def compare(
    current: list[Episode], proposed: list[Episode], range_end: float, step: float
) -> FiringDiff:
    """Match firings of the same label set that overlap in time, and count the rest.

    A proposed firing matched to a current one fired earlier or later when its start moved by
    at least one evaluation step.
    """
    old = [(e.labels, firing_span(e, range_end)) for e in current if e.fired]
    matched_old: set[int] = set()
    added = earlier = later = 0
    for episode in (e for e in proposed if e.fired):
        span = firing_span(episode, range_end)
        hits = [i for i, (lab, s) in enumerate(old) if lab == episode.labels and _overlaps(s, span)]
        if not hits:
            added += 1
            continue
        matched_old.update(hits)
        moved = span[0] - old[hits[0]][1][0]
        earlier += moved <= -step
        later += moved >= step
    return FiringDiff(
        added=added, removed=len(old) - len(matched_old), earlier=earlier, later=later
    )
