"""The applier process: applies the inbox to the store in order, in batches.

Run as `python -m receiver.intake.applier` by the receiver: the first stdin line is its setup;
every byte on the doorbell pipe (`Setup.bell`) says rows were appended; the end of stdin means
the receiver is gone, and the applier exits with it. Each applied batch is reported as one stdout
line. A killed applier resumes right after the last committed batch: with the SQLite inbox
file, the store's mark saved in the transaction that applies the rows is the only record of
progress; with the PostgreSQL inbox table, that transaction deletes the rows it applied.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import os
import pickle
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from maintwatch import heap, logs, loop
from receiver.config import PostgresStore, SqliteStore
from receiver.intake import inbox
from receiver.intake.apply import Prepared, Taken, settle
from receiver.intake.payload import Payload, PayloadError, parse_payload
from receiver.intake.protocol import Applied, Tally, error_text, log_applied
from receiver.intake.watchdog import split
from receiver.store import IngestResult, IntakeRules, Store, StoreUnavailable, make_store
from receiver.store.postgres import PostgresBackend
from receiver.store.sqlite import SqliteBackend

BATCH = 256
PRUNE_EVERY = 4096  # rows; and whenever caught up. Each prune takes the append lock briefly.
IDLE_CHECK = 1.0  # a lost doorbell costs at most this long
# After a batch smaller than BATCH, rows are let gather this long before the next read. A batch
# costs its transaction (a commit, an fsync, the reads ahead) whatever its size: under load,
# bigger batches apply the same webhooks with less CPU, which the HTTP side needs more. A
# webhook on a quiet receiver meets an idle applier and is applied at once.
GATHER = 0.005
STANDBY_POLL = 0.02  # while another replica's applier holds the inbox lock
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
T = TypeVar("T")


@dataclass(frozen=True)
class Setup:
    """What the applier needs from the receiver's config."""

    store: SqliteStore | PostgresStore
    rules: IntakeRules
    inbox_path: Path | None  # None: the PostgreSQL store's inbox table
    watchdog_alertname: str | None
    log: logs.Settings  # the receiver's: the applier's lines join its stream alike
    bell: int = -1  # the doorbell pipe's read end, inherited from the receiver

    def encode(self) -> bytes:
        """Return the setup line."""
        return base64.b64encode(pickle.dumps(self)) + b"\n"


async def retry(call: Callable[[], Awaitable[T]]) -> T:
    """Call until the store answers: rows wait for the store, none is skipped."""
    wait = BACKOFF_FIRST
    while True:
        try:
            return await call()
        except StoreUnavailable as exc:
            print(f"applier: store unavailable, retrying: {exc}", file=sys.stderr, flush=True)
            await asyncio.sleep(wait)
            wait = min(BACKOFF_MAX, wait * 2)


def hear(bell: int, rung: asyncio.Event) -> None:
    """Turn doorbell bytes into `rung` (many bells, one wake)."""
    with contextlib.suppress(BlockingIOError):  # nothing left to read: a spurious wake
        while len(os.read(bell, 65536)) == 65536:
            pass
    rung.set()


async def listen(stdin: asyncio.StreamReader) -> None:
    """Exit at the end of stdin (the receiver is gone)."""
    while await stdin.read(65536):
        pass
    # Each batch is one transaction: stopping mid-way loses nothing, and a new applier
    # started by a new receiver must not wait for this one.
    os._exit(0)


class Source(Protocol):
    """One kind of inbox as the applier sees it: apply a batch, say how far it got."""

    async def start(self) -> int:
        """Open; return the mark to report first (the applier is up)."""
        ...

    async def step(self, prepare: Callable[[inbox.Row], Prepared]) -> Report | None:
        """Apply the next batch; None: nothing to apply now (wait for the doorbell)."""
        ...


# The mark after a batch, what each row did, and when the batch's oldest row was accepted.
Report = tuple[int, list[Applied], float]


class FileSource:
    """The SQLite inbox file: rows after the store's mark; the applied ones pruned later."""

    def __init__(self, setup: Setup, store: Store, db: sqlite3.Connection, inbox_id: str) -> None:
        self.setup, self.store, self.db, self.inbox_id = setup, store, db, inbox_id
        self.mark = 0
        self.unpruned = 1

    async def start(self) -> int:
        """Read the store's mark for this inbox."""
        self.mark = await retry(lambda: self.store.inbox_mark(self.inbox_id))
        # Rows at or below the mark found at start stay: this applier cannot tell whether one
        # failed (its failure record would have been written after the mark). They are few.
        self.unpruned = self.mark + 1
        return self.mark

    async def step(self, prepare: Callable[[inbox.Row], Prepared]) -> Report | None:
        """Apply the rows after the mark; prune applied rows now and then."""
        mark = self.mark
        rows = inbox.read_after(self.db, mark, BATCH)
        if mark - self.unpruned >= PRUNE_EVERY or (not rows and self.unpruned <= mark):
            inbox.prune(self.db, self.unpruned, mark)
            self.unpruned = mark + 1
        if not rows:
            return None
        prepared = [prepare(r) for r in rows]
        items = [
            (p, r.received_at)
            for p, r in zip(prepared, rows, strict=True)
            if isinstance(p, Payload)
        ]
        at = (self.inbox_id, rows[-1].seq)
        results = await retry(lambda: self.store.ingest_batch(items, self.setup.rules, at))
        taken = settle(rows, prepared, results)
        failed = [(row, error_text(r)) for row, _, r in taken if isinstance(r, Exception)]
        if failed:
            inbox.keep_failed(self.db, failed, time.time())
        self.mark = rows[-1].seq
        return self.mark, outcomes(taken), min(r.received_at for r in rows)


class TableSource:
    """The PostgreSQL inbox table, shared by the replicas: one applier at a time applies.

    Rows are deleted in the transaction that applies them, so there is no mark to keep; the
    reported mark is the batch's highest seq (for the receiver's readiness only).
    """

    def __init__(self, setup: Setup, store: PostgresBackend) -> None:
        self.setup, self.store = setup, store

    async def start(self) -> int:
        """Nothing to read first: the table itself says what is left."""
        return 0

    async def step(self, prepare: Callable[[inbox.Row], Prepared]) -> Report | None:
        """Apply the oldest rows; while another replica's applier applies, poll as standby."""
        while True:
            taken = await retry(
                lambda: self.store.apply_inbox(BATCH, prepare, self.setup.rules, time.time())
            )
            if taken is not None:
                break
            # The holder reads again after each batch, so rows appended meanwhile are its;
            # polling only covers the moment it is between its last read and its commit.
            await asyncio.sleep(STANDBY_POLL)
        if not taken:
            return None
        oldest = min(row.received_at for row, _, _ in taken)
        return max(row.seq for row, _, _ in taken), outcomes(taken), oldest


def outcomes(taken: Taken) -> list[Applied]:
    """Describe what each taken row did."""
    return [Applied.of(row.seq, payload, result) for row, payload, result in taken]


class Applier:
    """Applies batches as they come and reports each one."""

    def __init__(self, setup: Setup, source: Source, rung: asyncio.Event) -> None:
        self.setup, self.source, self.rung = setup, source, rung
        self.log = logs.get_logger("receiver")

    async def run(self, out: asyncio.StreamWriter) -> None:
        """Apply rows as they come, forever (`listen` ends the process)."""
        start = Tally(await self.source.start())
        out.write(start.encode())  # the receiver learns: the applier is up
        await out.drain()
        while True:
            self.rung.clear()  # before reading: an append committed after the read rings again
            report = await self.source.step(self._prepare)
            if report is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.rung.wait(), IDLE_CHECK)
                continue
            mark, applied, oldest = report
            tally = Tally.of(mark, applied)
            tally.lag = max(0.0, time.time() - oldest)  # another replica's clock may run ahead
            out.write(tally.encode())  # first: the receiver's workers start on it while we log
            for item in applied:
                log_applied(self.log, item)
            await out.drain()
            if len(applied) < BATCH:
                await asyncio.sleep(GATHER)

    def _prepare(self, row: inbox.Row) -> Prepared:
        return prepare(row, self.setup.watchdog_alertname)


def prepare(row: inbox.Row, watchdog_alertname: str | None) -> Prepared:
    """Parse a row; settle it without the store if only watchdog alerts are in it."""
    try:
        payload = parse_payload(row.body)
    except PayloadError as exc:  # checked before the 200: only a changed parser gets here
        return exc
    if watchdog_alertname is None:
        return payload
    rest, _ = split(payload, watchdog_alertname)  # the receiver recorded the beat before the 200
    return IngestResult("watchdog") if rest is None else rest


async def main() -> None:
    """Read the setup, open store and inbox, apply until stdin ends."""
    # Ctrl-C reaches the whole process group: the receiver ends this process in order.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout
    )
    out = asyncio.StreamWriter(transport, protocol, None, loop)
    # The receiver that started this process wrote this line: nobody else holds the pipe.
    setup: Setup = pickle.loads(base64.b64decode(await stdin.readline()))  # noqa: S301
    logs.configure(*setup.log)
    rung = asyncio.Event()
    os.set_blocking(setup.bell, False)
    loop.add_reader(setup.bell, hear, setup.bell, rung)
    listening = asyncio.create_task(listen(stdin))
    # The applier's loop has nothing to do while the store works: SQLite runs on it directly.
    store = (
        SqliteBackend(setup.store.path, inline=True)
        if isinstance(setup.store, SqliteStore)
        else make_store(setup.store)
    )
    db: sqlite3.Connection | None = None
    source: Source
    if setup.inbox_path is None:
        assert isinstance(store, PostgresBackend)
        source = TableSource(setup, store)  # the table's advisory lock picks the applier
    else:
        # One applier per inbox, even while a killed receiver's applier is still winding down.
        lock = setup.inbox_path.with_name(setup.inbox_path.name + ".lock").open("a")
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        db, inbox_id = inbox.connect(setup.inbox_path, synchronous="NORMAL")
        source = FileSource(setup, store, db, inbox_id)
    await retry(store.open)
    heap.settle()
    try:
        await Applier(setup, source, rung).run(out)
    finally:
        listening.cancel()
        await store.close()
        if db is not None:
            db.close()


if __name__ == "__main__":
    # The loop is chosen before the setup line can be read: the receiver names its own in argv.
    loop.run(main(), loop.resolve(sys.argv[1] if len(sys.argv) > 1 else "asyncio"))
