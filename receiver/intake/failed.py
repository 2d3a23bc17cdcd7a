"""The rows the applier could not apply, for operators: list them, replay them.

The applier keeps a failing row (a "poison" row, e.g. one accepted by an older, laxer parser)
in inbox_failed and moves on. A replay applies kept rows in seq order through the applier's
own path (`prepare`, then the store's intake transaction) and forgets the ones that apply.

Replaying a webhook that was already applied changes nothing: the merge orders each alert by
its own timestamps, so an identical redelivery is "none" (no write, no notification). That is
what makes the file inbox's order (store commit first, then the kept row's delete) safe.

Rows are applied at the replay's time, not at their received time (as the applier does): an
old `now` would start escalation timers and rate-limit windows long past. The merge's order
does not depend on `now`, so an applied row still changes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from receiver.app import intake_rules
from receiver.config import ReceiverBase
from receiver.intake import inbox
from receiver.intake.applier import BATCH, outcomes, prepare
from receiver.intake.apply import Prepared, Taken, apply_rows, failures
from receiver.intake.inbox import FailedRow
from receiver.intake.payload import Payload
from receiver.intake.protocol import Applied, error_text
from receiver.intake.wiring import inbox_kind, inbox_path
from receiver.store import IngestResult, IntakeRules, Store, inbox_sql, make_store
from receiver.store.postgres import PostgresBackend
from receiver.store.tx import Row as DbRow
from receiver.store.tx import Tx

TABLE = "PostgreSQL table inbox_failed"


class Refused(Exception):
    """The command cannot do what was asked with this config or these arguments."""


class Unavailable(Exception):
    """The inbox cannot be read or written now (missing file, another replay running)."""


def where(config: ReceiverBase) -> str:
    """Return where the kept rows are, for messages: the inbox file or the table."""
    kind = inbox_kind(config)
    if kind is None:
        raise Refused(
            "intake.mode: direct: webhooks are applied before the answer, there is no inbox "
            "and no failed rows (a webhook that fails is answered with an error instead)"
        )
    return str(inbox_path(config)) if kind == "file" else TABLE


async def list_failed(config: ReceiverBase) -> list[FailedRow]:
    """Return the kept rows in seq order."""
    where(config)  # refuses direct mode
    path = inbox_path(config)
    if path is not None:
        with _file(path) as db:
            return inbox.read_failed(db)
    async with _store(config) as store:
        return _rows(await store.transaction(inbox_sql.failed))


async def replay(
    config: ReceiverBase,
    seqs: Sequence[int] | None,
    dry_run: bool,
    settled: Callable[[Applied], None] = lambda _: None,
) -> list[Applied]:
    """Apply the kept rows `seqs` (None: all) in seq order; `dry_run`: roll every change back.

    `settled` hears of each row once its outcome is committed, so what was done before the
    store went away is still told.
    """
    place = where(config)
    rules = intake_rules(config)
    alertname = config.watchdog.alertname if config.watchdog is not None else None

    def prep(row: inbox.Row) -> Prepared:
        # No heartbeat from an old row: the receiver recorded it when the webhook came.
        return prepare(row, alertname)

    out: list[Applied] = []
    path = inbox_path(config)
    if path is not None:
        with _file(path) as db, _one_replay(path, dry_run):
            rows = inbox.read_failed(db, seqs)
            _check(seqs, [r.seq for r in rows], place)
            if not rows:
                return []
            async with _store(config) as store:
                for row in rows:
                    out.append(await _replay_file_row(db, store, row, prep, rules, dry_run))
                    settled(out[-1])
                return out
    async with _store(config) as store:
        assert isinstance(store, PostgresBackend)
        found = [r.seq for r in _rows(await store.transaction(inbox_sql.failed, seqs))]
        _check(seqs, found, place)
        for first in range(0, len(found), BATCH):
            chunk = found[first : first + BATCH]
            taken = await _replay_table(store, chunk, prep, rules, dry_run)
            for item in outcomes(taken):
                out.append(item)
                settled(item)
        return out


async def _replay_file_row(
    db: sqlite3.Connection,
    store: Store,
    row: FailedRow,
    prep: Callable[[inbox.Row], Prepared],
    rules: IntakeRules,
    dry_run: bool,
) -> Applied:
    item = prep(row)
    payload = item if isinstance(item, Payload) else None
    result: IngestResult | Exception
    if isinstance(item, Payload):
        if dry_run:
            ((_, _, result),) = await _rehearse(store, [row], prep, rules)
        else:
            (result,) = await store.ingest_batch([(item, time.time())], rules)
    else:
        result = item
    if dry_run:
        return Applied.of(row.seq, payload, result)
    if isinstance(result, Exception):
        inbox.keep_failed(db, [(row, error_text(result))], time.time())
    else:
        # After the store's commit, not with it (two files): a crash in between leaves the
        # row listed, and replaying it again finds the webhook applied and changes nothing.
        inbox.forget_failed(db, row.seq)
    return Applied.of(row.seq, payload, result)


async def _replay_table(
    store: PostgresBackend,
    seqs: Sequence[int],
    prep: Callable[[inbox.Row], Prepared],
    rules: IntakeRules,
    dry_run: bool,
) -> Taken:
    try:
        return await store.transaction(
            _table_script, seqs, prep, rules, time.time(), dry_run, store.fatal
        )
    except _Rehearsed as done:
        return done.taken


async def _table_script(
    tx: Tx,
    seqs: Sequence[int],
    prep: Callable[[inbox.Row], Prepared],
    rules: IntakeRules,
    now: float,
    dry_run: bool,
    fatal: tuple[type[Exception], ...],
) -> Taken:
    # The applier's lock: the applier writes kept rows under it, and two replays reading and
    # deleting under it never apply one row twice. The applier waits meanwhile (standby).
    await inbox_sql.lock(tx)
    rows = _rows(await inbox_sql.failed(tx, seqs))  # one replayed meanwhile is gone
    taken = await apply_rows(tx, rows, prep, rules, now, True, fatal)
    if dry_run:
        raise _Rehearsed(taken)
    failed = failures(taken)
    still = {seq for seq, _ in failed}
    # In the applying transaction: a row is either applied and forgotten, or kept, never both.
    await inbox_sql.settle_failed(tx, [r.seq for r in rows if r.seq not in still], failed, now)
    return taken


async def _rehearse(
    store: Store,
    rows: Sequence[inbox.Row],
    prep: Callable[[inbox.Row], Prepared],
    rules: IntakeRules,
) -> Taken:
    try:
        await store.transaction(_rehearse_script, rows, prep, rules, time.time(), store.fatal)
    except _Rehearsed as done:
        return done.taken
    raise AssertionError("a rehearsal always rolls back")


async def _rehearse_script(
    tx: Tx,
    rows: Sequence[inbox.Row],
    prep: Callable[[inbox.Row], Prepared],
    rules: IntakeRules,
    now: float,
    fatal: tuple[type[Exception], ...],
) -> NoReturn:
    raise _Rehearsed(await apply_rows(tx, rows, prep, rules, now, True, fatal))


class _Rehearsed(Exception):
    # Not an error: carries a dry run's outcome out of the transaction it rolls back.

    def __init__(self, taken: Taken) -> None:
        super().__init__("dry run: rolled back")
        self.taken = taken


def _rows(found: Sequence[DbRow]) -> list[FailedRow]:
    return [
        FailedRow(
            int(r["seq"]), float(r["received_at"]), bytes(r["body"]), str(r["error"]),
            float(r["failed_at"]),
        )
        for r in found
    ]  # fmt: skip


def _check(seqs: Sequence[int] | None, found: Sequence[int], place: str) -> None:
    missing = sorted(set(seqs or ()) - set(found))
    if missing:
        listed = ", ".join(map(str, missing))
        raise Refused(f"--seq {listed}: no such failed row in {place}")


@contextlib.contextmanager
def _file(path: Path) -> Iterator[sqlite3.Connection]:
    if not path.exists():
        raise Unavailable(f"{path}: no inbox file (the receiver creates it when it starts)")
    try:
        db, _ = inbox.connect(path, synchronous="NORMAL")
    except sqlite3.Error as exc:
        raise Unavailable(f"{path}: {exc}") from exc
    with contextlib.closing(db):
        yield db


@contextlib.contextmanager
def _one_replay(path: Path, dry_run: bool) -> Iterator[None]:
    # Not the applier's lock (it holds that for its whole life): a lock of the replays' own,
    # so two of them never apply one row twice. A dry run writes nothing and needs none.
    if dry_run:
        yield
        return
    lock_path = path.with_name(path.name + ".replay.lock")
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Unavailable(f"{lock_path}: another inbox replay is running") from None
        yield


@contextlib.asynccontextmanager
async def _store(config: ReceiverBase) -> AsyncIterator[Store]:
    store = make_store(config.store)
    try:
        await store.open()
        yield store
    finally:
        await store.close()
