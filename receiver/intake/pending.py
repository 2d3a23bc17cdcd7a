"""What the inbox file holds that the applier has not applied yet, known without any I/O.

The inbox's writer thread records each commit (its last seq and when its first row came);
the applier's reports move the applied mark. So the receiver can say, at every scrape, how
many webhooks wait and for how long, and both keep growing while the applier is down, stuck
or behind, when its reports stop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence


class Pending:
    """Accepted and not yet applied rows of one inbox file (seqs are consecutive).

    Written by the inbox's writer thread and read by the event loop: each step is a single
    deque or attribute operation, which the interpreter does atomically.
    """

    def __init__(self) -> None:
        self._commits: deque[tuple[int, float]] = deque()  # (last seq, first received_at)
        self._last = 0
        self._applied = 0

    def start(self, rows: Sequence[tuple[int, float]]) -> None:
        """Take the rows the file holds at open (seq order); those before them were applied."""
        if rows:
            self._applied = max(self._applied, rows[0][0] - 1)
            self._last = max(self._last, rows[-1][0])
        self._commits.extend(rows)

    def committed(self, last: int, received_at: float) -> None:
        """Record one commit: its rows end at seq `last`; its first came at `received_at`."""
        self._commits.append((last, received_at))
        self._last = last

    def applied(self, mark: int) -> None:
        """Forget every row at or below the applier's mark."""
        self._applied = max(self._applied, mark)
        while self._commits and self._commits[0][0] <= mark:
            self._commits.popleft()

    def count(self) -> int:
        """Return how many rows wait."""
        return max(0, self._last - self._applied)

    def oldest(self) -> float | None:
        """Return when the oldest waiting row came (None: none waits)."""
        try:
            return self._commits[0][1]
        except IndexError:
            return None
