"""Delivery lanes (pure): which due messages fit the free slots, and SMS rate limits."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def rate_limit(
    recent: Sequence[float], now: float, max_messages: int, window: float
) -> float | None:
    """Return when a message may go out if `recent` send times fill the window, else None."""
    inside = sorted(t for t in recent if t > now - window)
    if len(inside) < max_messages:
        return None
    return inside[len(inside) - max_messages] + window


PRIORITIES = {"critical": 0, "warning": 1}
LOWEST_PRIORITY = 2


def priority(body: Mapping[str, Any]) -> int:
    """Return a message's lane priority: 0 critical, 1 warning, 2 anything else."""
    return PRIORITIES.get(str(body.get("severity", "")), LOWEST_PRIORITY)


@dataclass(frozen=True)
class Wanted:
    """What the worker can take now: free slots per channel lane and per recipient.

    `recipients` holds (channel, recipient) pairs already at the per-recipient cap, so one
    recipient whose deliveries hang cannot fill a lane. `strays` rows of channels that are not
    configured (any more) may be taken too: the worker fails them at once.
    """

    lanes: Mapping[str, int]
    per_recipient: int
    in_flight: Mapping[tuple[str, str], int] = field(default_factory=dict)
    strays: int = 0


class Picker:
    """Decide, candidate by candidate, which due rows fit the free slots (pure)."""

    def __init__(self, wanted: Wanted) -> None:
        self._wanted = wanted
        self._free = dict(wanted.lanes)
        self._strays = wanted.strays
        self._people = dict(wanted.in_flight)

    def fits(self, channel: str, recipient: str | None) -> bool:
        """Return whether a row of this channel and recipient may be claimed now."""
        if channel not in self._free:
            return self._strays > 0
        if self._free[channel] <= 0:
            return False
        if recipient is None:
            return True
        return self._people.get((channel, recipient), 0) < self._wanted.per_recipient

    def take(self, channel: str, recipient: str | None) -> None:
        """Count a claimed row against its lane and recipient."""
        if channel not in self._free:
            self._strays -= 1
            return
        self._free[channel] -= 1
        if recipient is not None:
            key = (channel, recipient)
            self._people[key] = self._people.get(key, 0) + 1

    def lanes(self, due: Iterable[str]) -> list[tuple[str, int]]:
        """Return the channels with due rows to read, and how many candidates to read of each."""
        out = []
        for name in due:
            if name not in self._free:
                if self._strays > 0:
                    out.append((name, self._strays))
            elif self._free[name] > 0:
                # More candidates than slots: some belong to recipients at their cap.
                out.append((name, self._free[name] * 4))
        return out
