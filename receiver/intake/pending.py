"""What the inbox file holds that the applier has not applied yet, known without any I/O.

The inbox's writer thread records each commit (its rows' seqs and when its first row came);
the applier's reports move the applied mark. So the receiver can say, at every scrape, how
many webhooks wait and for how long, and both keep growing while the applier is down, stuck
or behind, when its reports stop.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence

# Rows are remembered in spans of up to this many, each with its first row's arrival: a day's
# backlog behind a dead applier costs a few thousand entries, not one per webhook. A span the
# mark has entered keeps its first arrival until the mark passes it and grows no more: the age
# of the oldest waiting webhook is over-stated by at most the time one span took to arrive.
SPAN = 256


class Pending:
    """Accepted and not yet applied rows of one inbox file (seqs are consecutive).

    Written by the inbox's writer thread, read and cleared by the event loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: deque[list[float]] = deque()  # [first seq, last seq, first received_at]
        self._last = 0
        self._applied = 0

    def start(self, spans: Sequence[tuple[int, int, float]], last: int) -> None:
        """Take what the file holds at open, in seq order, as (first seq, last seq, first
        arrival) spans, and the highest seq ever appended; the rows before the first span
        were applied (and pruned), as were all of them when the file holds none."""
        self._applied = max(self._applied, spans[0][0] - 1 if spans else last)
        self._last = max(self._last, last)
        for first, span_last, received_at in spans:
            self._add(first, span_last, received_at)

    @property
    def last(self) -> int:
        """Return the highest seq appended."""
        return self._last

    def committed(self, first: int, last: int, received_at: float) -> None:
        """Record one commit of rows first..last, the first of which came at `received_at`."""
        self._add(first, last, received_at)

    def _add(self, first: int, last: int, received_at: float) -> None:
        with self._lock:
            self._last = max(self._last, last)
            span = self._spans[-1] if self._spans else None
            # Grown only while no row of it is applied: the first arrival stands for them all.
            if span is not None and span[0] > self._applied and span[1] - span[0] + 1 < SPAN:
                span[1] = last
                return
            self._spans.append([first, last, received_at])

    def applied(self, mark: int) -> None:
        """Forget every row at or below the applier's mark."""
        with self._lock:
            self._applied = max(self._applied, mark)
            while self._spans and self._spans[0][1] <= mark:
                self._spans.popleft()

    def count(self) -> int:
        """Return how many rows wait."""
        return max(0, self._last - self._applied)

    def oldest(self) -> float | None:
        """Return when the oldest waiting row came (None: none waits)."""
        with self._lock:
            return self._spans[0][2] if self._spans else None
