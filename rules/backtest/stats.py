"""Per-alert numbers from replayed episodes: firings, firing time, delay, flapping, pages (pure)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from rules.backtest.statemachine import Episode

WEEK = 7 * 86400.0
# A firing that starts again this soon after the same label set resolved counts as a flap.
FLAP_WINDOW = 3600.0


@dataclass(frozen=True)
class AlertStats:
    """What one rule would have done over the range."""

    firings: int
    firing_seconds: float
    longest_seconds: float
    breach_to_fire_seconds: float | None
    flaps: int
    still_firing: int
    pages_per_week: float | None


def firing_span(episode: Episode, range_end: float) -> tuple[float, float]:
    """Return (fired_at, end) of a fired episode, an open one ending at `range_end`."""
    assert episode.fired_at is not None
    end = episode.ended_at if episode.ended_at is not None else range_end
    return episode.fired_at, end


def flaps(fired: list[Episode], range_end: float) -> int:
    """Count firings that began within FLAP_WINDOW of the same label set's previous end."""
    last_end: dict[object, float] = {}
    count = 0
    for episode in sorted(fired, key=lambda e: e.fired_at or 0.0):
        start, end = firing_span(episode, range_end)
        previous = last_end.get(episode.labels)
        if previous is not None and start - previous < FLAP_WINDOW:
            count += 1
        last_end[episode.labels] = end
    return count


def summarize(
    episodes: list[Episode], severity: str, range_start: float, range_end: float
) -> AlertStats:
    """Return the stats of one rule's episodes over [range_start, range_end]."""
    fired = [e for e in episodes if e.fired]
    durations = [e.firing_seconds(range_end) for e in fired]
    delays = [e.fired_at - e.active_at for e in fired if e.fired_at is not None]
    weeks = max(range_end - range_start, 1.0) / WEEK
    return AlertStats(
        firings=len(fired),
        firing_seconds=sum(durations),
        longest_seconds=max(durations, default=0.0),
        breach_to_fire_seconds=statistics.median(delays) if delays else None,
        flaps=flaps(fired, range_end),
        still_firing=sum(1 for e in fired if e.ended_at is None),
        pages_per_week=len(fired) / weeks if severity == "critical" else None,
    )
