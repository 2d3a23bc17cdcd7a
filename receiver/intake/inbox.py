"""The inbox: accepted webhook bodies in a SQLite file, appended with group commit.

An append returns only after its transaction is on disk (WAL, synchronous=FULL), so a 200 for
it survives a crash; concurrent appends share one commit and one fsync.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from receiver.intake.pending import SPAN, Pending
from receiver.store.batch import WriterThread

# AUTOINCREMENT: a plain rowid may reuse the numbers of pruned rows, which would put new rows
# at or below the applier's saved mark, where they would never be applied.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox_failed (
    seq INTEGER PRIMARY KEY, received_at REAL NOT NULL, body BLOB NOT NULL,
    error TEXT NOT NULL, failed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox_meta (id TEXT NOT NULL);
"""


APPEND_BATCH = 256  # appends per statement, at most


@dataclass(frozen=True)
class Row:
    """One accepted webhook."""

    seq: int
    received_at: float
    body: bytes


@dataclass(frozen=True)
class FailedRow(Row):
    """A row kept in inbox_failed: why it last failed to apply, and when."""

    error: str
    failed_at: float


def connect(path: Path, synchronous: str = "FULL") -> tuple[sqlite3.Connection, str]:
    """Open (or create) the inbox file; return the connection and the inbox id.

    FULL: durable once COMMIT returns (appends). The applier's writes (prune, failed rows)
    use NORMAL: they need no fsync of their own, the next append's fsync covers them (the WAL
    is written in order), and a prune lost to a power cut only leaves applied rows behind.
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA busy_timeout=5000")
    with _tx(db):
        for statement in filter(str.strip, _SCHEMA.split(";")):
            db.execute(statement)
        found = db.execute("SELECT id FROM inbox_meta").fetchone()
        if found is None:
            # A new file gets a new id: marks saved for a lost inbox never skip this one's rows.
            found = (str(uuid.uuid4()),)
            db.execute("INSERT INTO inbox_meta (id) VALUES (?)", found)
    return db, str(found[0])


def last_seq(db: sqlite3.Connection) -> int:
    """Return the highest seq ever appended (0: none)."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'").fetchone()
    return int(row[0]) if row else 0


def arrivals(db: sqlite3.Connection) -> list[tuple[int, int, float]]:
    """Return the rows as spans of up to `SPAN` seqs: first, last, earliest received_at."""
    cursor = db.execute(
        "SELECT MIN(seq), MAX(seq), MIN(received_at) FROM inbox GROUP BY seq / ? ORDER BY 1",
        (SPAN,),
    )
    return [(int(f), int(last), float(r)) for f, last, r in cursor]


def read_after(db: sqlite3.Connection, seq: int, limit: int) -> list[Row]:
    """Return up to `limit` rows after `seq`, in order."""
    cursor = db.execute(
        "SELECT seq, received_at, body FROM inbox WHERE seq > ? ORDER BY seq LIMIT ?",
        (seq, limit),
    )
    return [Row(int(s), float(r), bytes(b)) for s, r, b in cursor]


def keep_failed(db: sqlite3.Connection, failed: list[tuple[Row, str]], now: float) -> None:
    """Copy rows that failed to apply to inbox_failed, where pruning leaves them."""
    with _tx(db):
        db.executemany(
            "INSERT OR REPLACE INTO inbox_failed VALUES (?, ?, ?, ?, ?)",
            [(r.seq, r.received_at, r.body, error, now) for r, error in failed],
        )


def read_failed(db: sqlite3.Connection, seqs: Sequence[int] | None = None) -> list[FailedRow]:
    """Return the kept rows (those of `seqs` only, if given), in seq order."""
    sql = "SELECT seq, received_at, body, error, failed_at FROM inbox_failed"
    params: tuple[str, ...] = ()
    if seqs is not None:
        sql += " WHERE seq IN (SELECT value FROM json_each(?))"
        params = (json.dumps(list(seqs)),)
    cursor = db.execute(sql + " ORDER BY seq", params)
    return [FailedRow(int(s), float(r), bytes(b), str(e), float(f)) for s, r, b, e, f in cursor]


def forget_failed(db: sqlite3.Connection, seq: int) -> None:
    """Delete a kept row that has since been applied."""
    with _tx(db):
        db.execute("DELETE FROM inbox_failed WHERE seq = ?", (seq,))


def prune(db: sqlite3.Connection, first: int, last: int) -> None:
    """Delete the applied rows first..last."""
    with _tx(db):
        db.execute("DELETE FROM inbox WHERE seq BETWEEN ? AND ?", (first, last))


@contextmanager
def _tx(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class Inbox:
    """The HTTP side: appends through one writer thread, many appends per commit.

    `committed` is called on the writer thread after each commit (the applier's doorbell).
    """

    def __init__(self, path: Path, committed: Callable[[], None] = lambda: None) -> None:
        self.path = path
        self.pending = Pending()
        self._committed = committed
        self.id = ""
        self._db: sqlite3.Connection | None = None
        self._writer: WriterThread[tuple[float, bytes], int] = WriterThread(
            self._append_batch, "inbox-writer", APPEND_BATCH
        )

    async def open(self) -> None:
        """Open the file on the writer thread."""
        self._writer.start()
        self._db, self.id = await self._writer.call(connect, self.path)
        spans = await self._writer.call(arrivals, self._db)
        self.pending.start(spans, await self._writer.call(last_seq, self._db))

    @property
    def last_seq(self) -> int:
        """Return the highest seq appended (recorded at each commit)."""
        return self.pending.last

    async def append(self, received_at: float, body: bytes) -> int:
        """Append a body; return its seq once it is on disk."""
        return await self._writer.submit((received_at, body))

    async def close(self) -> None:
        """Finish queued appends and close the file."""
        if self._db is not None:
            await self._writer.call(self._db.close)
        await self._writer.stop()

    def _append_batch(self, items: list[tuple[float, bytes]]) -> list[int | Exception]:
        db = self._db
        assert db is not None
        # One statement, its own transaction: SQLite runs it in one step, and this thread
        # gives up and takes back the GIL once per batch (executemany steps, and so waits for
        # the busy event loop's thread, once per row). APPEND_BATCH rows stay under SQLite's
        # oldest limit of 999 parameters.
        values = ", ".join(["(?, ?)"] * len(items))
        params = [value for item in items for value in item]
        sql = "INSERT INTO inbox (received_at, body) VALUES " + values  # noqa: S608 - placeholders
        last = db.execute(sql, params).lastrowid
        assert last is not None
        self.pending.committed(last - len(items) + 1, last, items[0][0])
        self._committed()
        # AUTOINCREMENT under the write lock numbers a statement's rows one after another.
        return list(range(last - len(items) + 1, last + 1))
