"""Prometheus' alerting state machine, replayed over evaluation results (pure).

It follows `AlertingRule.Eval` in Prometheus' rules/alerting.go, one label set at a time (an
alert's label sets never influence each other):

- a label set present in the result while inactive becomes pending, active since that step;
- pending turns firing at the first evaluation where `now - active_at >= for` (at once when
  `for` is 0);
- a label set missing from the result ends the alert at that step (pending or firing), unless
  it was firing and `keep_firing_for` has not elapsed since the first step it went missing;
  coming back in between clears that count;
- an alert that ended starts over as a new pending alert when the label set comes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Episode:
    """One alert from first breach to end: pending since `active_at`, firing from `fired_at`.

    `ended_at` is the first evaluation at which it was no longer pending or firing; None when
    it was still active at the end of the range.
    """

    labels: Labels
    active_at: float
    fired_at: float | None
    ended_at: float | None

    @property
    def fired(self) -> bool:
        """Return whether the alert reached `firing`."""
        return self.fired_at is not None

    def firing_seconds(self, range_end: float) -> float:
        """Return how long it fired, counting an open episode up to `range_end`."""
        if self.fired_at is None:
            return 0.0
        end = self.ended_at if self.ended_at is not None else range_end
        return end - self.fired_at


def replay(
    times: Iterable[float], present: set[float], for_s: float, keep_firing_for_s: float
) -> list[tuple[float, float | None, float | None]]:
    """Replay one label set over evaluation `times`; return (active_at, fired_at, ended_at)s."""
    out: list[tuple[float, float | None, float | None]] = []
    active_at: float | None = None
    fired_at: float | None = None
    missing_since: float | None = None
    for ts in times:
        if ts in present:
            missing_since = None
            if active_at is None:
                active_at = ts
        elif active_at is None:
            continue
        else:
            keep = False
            if fired_at is not None and keep_firing_for_s > 0:
                missing_since = ts if missing_since is None else missing_since
                keep = ts - missing_since < keep_firing_for_s
            if not keep:
                out.append((active_at, fired_at, ts))
                active_at = fired_at = missing_since = None
                continue
        if fired_at is None and ts - active_at >= for_s:
            fired_at = ts
    if active_at is not None:
        out.append((active_at, fired_at, None))
    return out


def episodes(
    times: list[float],
    results: Mapping[Labels, set[float]],
    for_s: float,
    keep_firing_for_s: float,
) -> list[Episode]:
    """Return every label set's episodes, ordered by when they became active."""
    out = [
        Episode(labels, active, fired, ended)
        for labels, present in results.items()
        for active, fired, ended in replay(times, present, for_s, keep_firing_for_s)
    ]
    return sorted(out, key=lambda e: (e.active_at, e.labels))
