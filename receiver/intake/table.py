"""The PostgreSQL inbox on the HTTP side: appends to the shared table, many per commit.

A 200 is sent once the row is committed in PostgreSQL, so what a replica accepted never
waits on that replica's disk: any replica's applier applies it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from receiver.store import StoreUnavailable
from receiver.store.batch import Batcher
from receiver.store.postgres import PostgresBackend

APPLIED_POLL = 0.01  # read-your-writes: how often to look whether the rows are applied


class TableInbox:
    """Appends share one multi-row INSERT and one COMMIT while the previous batch commits.

    `committed` is called after each commit (the applier's doorbell).
    """

    def __init__(
        self, store: PostgresBackend, committed: Callable[[], None] = lambda: None
    ) -> None:
        self.store = store
        self._committed = committed
        self.last_seq = 0
        self._seen_applied = 0  # every row at or below this was applied (checked)
        self._batcher: Batcher[tuple[float, bytes], int] = Batcher(self._append_batch)

    async def open(self) -> None:
        """Nothing to open: the store's pool holds the connections."""

    async def append(self, received_at: float, body: bytes) -> int:
        """Append a body; return its seq once it is committed."""
        seq = await self._batcher.submit((received_at, body))
        self.last_seq = max(self.last_seq, seq)
        return seq

    async def close(self) -> None:
        """Nothing to close: appends in flight finish with their requests."""

    async def applied(self, seq: int, within: float) -> bool:
        """Wait until no row at or below `seq` is left in the table (bounded); True if none.

        The table is the truth on every replica: this one's applier may be the standby, and
        with concurrent inserters the highest applied seq says nothing about lower ones.
        """
        if seq <= self._seen_applied:
            return True
        deadline = time.monotonic() + within
        try:
            while await self.store.inbox_pending(seq):
                if time.monotonic() >= deadline:
                    return False
                await asyncio.sleep(APPLIED_POLL)
        except StoreUnavailable:
            return False  # the read that waits on this answers for the store itself
        self._seen_applied = max(self._seen_applied, seq)
        return True

    async def _append_batch(self, items: list[tuple[float, bytes]]) -> list[int | Exception]:
        seqs: list[int | Exception] = list(await self.store.append_inbox(items))
        self._committed()
        return seqs
