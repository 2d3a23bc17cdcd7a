"""The PostgreSQL inbox on the HTTP side: appends to the shared table, many per commit.

A 200 is sent once the row is committed in PostgreSQL, so what a replica accepted never
waits on that replica's disk: any replica's applier applies it. The appends run on a writer
thread over a blocking connection (see `store.blocking`), like the SQLite inbox's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from receiver.store import StoreUnavailable, inbox_sql
from receiver.store.batch import WriterThread
from receiver.store.blocking import BlockingSession
from receiver.store.postgres import PostgresBackend

APPLIED_POLL = 0.01  # read-your-writes: how often to look whether the rows are applied


class TableInbox:
    """Appends queued while the previous batch commits share one multi-row INSERT (and commit).

    `committed` is called after each commit (the applier's doorbell).
    """

    def __init__(
        self, store: PostgresBackend, committed: Callable[[], None] = lambda: None
    ) -> None:
        self.store = store
        self._committed = committed
        self.last_seq = 0
        self._seen_applied = 0  # every row at or below this was applied (checked)
        self._session = BlockingSession(store.config)
        self._writer: WriterThread[tuple[float, bytes], int] = WriterThread(
            self._append_batch, "inbox-writer"
        )

    async def open(self) -> None:
        """Start the writer thread (it connects on the first append)."""
        self._writer.start()

    async def append(self, received_at: float, body: bytes) -> int:
        """Append a body; return its seq once it is committed."""
        await self.store.migrated()  # the table may not exist yet if the server was down at start
        seq = await self._writer.submit((received_at, body))
        self.last_seq = max(self.last_seq, seq)
        return seq

    async def close(self) -> None:
        """Finish queued appends, close the connection and end the thread."""
        await self._writer.call(self._session.close)
        await self._writer.stop()

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

    def _append_batch(self, items: list[tuple[float, bytes]]) -> list[int | Exception]:
        seqs: list[int | Exception] = list(self._session.run(inbox_sql.append, items))
        self._committed()
        return seqs
