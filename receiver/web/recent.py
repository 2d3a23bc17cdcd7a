"""Share one read among page views that arrive within a second (pure asyncio, no I/O).

During an outage many people open the same incident, and each page reloads itself: the
first view reads, views arriving while it reads or within `ttl` after get the same rows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Recent(Generic[T]):
    """A single-flight cache whose entries live `ttl` seconds."""

    def __init__(self, ttl: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.clock = ttl, clock
        self._items: dict[Hashable, tuple[float, asyncio.Future[T]]] = {}

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        """Return the recent result for `key`, or load it (once, however many wait)."""
        now = self.clock()
        found = self._items.get(key)
        if found is None or now - found[0] >= self.ttl:
            if len(self._items) > 64:
                self._items = {k: v for k, v in self._items.items() if now - v[0] < self.ttl}
            found = (now, asyncio.ensure_future(load()))
            self._items[key] = found
        try:
            # Shielded: one viewer closing the tab must not cancel the read the others wait on.
            return await asyncio.shield(found[1])
        except Exception:
            if self._items.get(key) is found:
                del self._items[key]  # a failed read is not shared with later views
            raise

    def forget(self) -> None:
        """Drop every entry (after a change made through the pages)."""
        self._items.clear()
