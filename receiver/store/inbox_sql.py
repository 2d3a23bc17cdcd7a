"""The PostgreSQL inbox table: appends, the applier's take-apply-delete transaction, and the
rows kept in inbox_failed (listed and replayed by operators)."""

from __future__ import annotations

from collections.abc import Sequence

from receiver.store.tx import Row, Tx, one

# pg_try_advisory_xact_lock key: one applier applies at a time across replicas, so a group's
# webhooks (each sent only after the previous one's 200) are applied in the order accepted.
INBOX_LOCK = 0x6D77_6962

# unnest keeps one statement text for every batch size; nextval runs in array order. The
# bodies go in binary: as text each byte would be hex-escaped by the client and parsed back.
_APPEND = (
    "INSERT INTO inbox (received_at, body) "
    "SELECT * FROM unnest(?::double precision[], {binary ?}::bytea[]) RETURNING seq"
)
# The applying transaction commits without waiting for its WAL flush (set_config(..., true)
# is SET LOCAL): nothing outside the database acts on it before a later commit that does wait
# (the outbox's claim before a send, an ack), and PostgreSQL's WAL is one sequence, so that
# flush covers this commit too. A crash before any such flush loses the apply and its DELETE
# together: the rows are applied again, and no message went out for them. Durable appends
# (the 200) are unchanged.
_TRY_LOCK = (
    "SELECT pg_try_advisory_xact_lock(?) AS got, "
    "set_config('synchronous_commit', 'off', true) AS sync"
)
_TAKE = "SELECT seq, received_at, body FROM inbox ORDER BY seq LIMIT ?"
_KEEP_FAILED = (
    "INSERT INTO inbox_failed (seq, received_at, body, error, failed_at) "
    "SELECT seq, received_at, body, ?, ? FROM inbox WHERE seq = ?"
)
_DELETE = "DELETE FROM inbox WHERE seq {any}"
_PENDING = "SELECT 1 AS found FROM inbox WHERE seq <= ? LIMIT 1"
# Bounded: the applier holds the lock for one batch at a time; longer means it is stuck.
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '10s'"
_LOCK = "SELECT pg_advisory_xact_lock(?)"
_FAILED = "SELECT seq, received_at, body, error, failed_at FROM inbox_failed"
_FAILED_OF = _FAILED + " WHERE seq {any}"
_FORGET = "DELETE FROM inbox_failed WHERE seq {any}"
_REFAIL = "UPDATE inbox_failed SET error = ?, failed_at = ? WHERE seq = ?"


async def append(tx: Tx, items: Sequence[tuple[float, bytes]]) -> list[int]:
    """Insert bodies in one statement; return their seqs in the items' order."""
    found = await tx.fetchall(_APPEND, ([at for at, _ in items], [body for _, body in items]))
    return sorted(int(r["seq"]) for r in found)


async def take(tx: Tx, limit: int) -> list[Row] | None:
    """Take the applier lock and read the oldest rows; None: another applier holds the lock.

    Read after the lock, so the rows the previous holder deleted are gone from this read.
    """
    if not (await one(tx, _TRY_LOCK, (INBOX_LOCK,)))["got"]:
        return None
    return await tx.fetchall(_TAKE, (limit,))


async def consume(
    tx: Tx, seqs: Sequence[int], failed: Sequence[tuple[int, str]], now: float
) -> None:
    """Move failed rows to inbox_failed and delete every applied row, in the applying tx."""
    await tx.executemany(_KEEP_FAILED, [(error, now, seq) for seq, error in failed])
    await tx.execute(_DELETE, (tx.dialect.ids(seqs),))


async def pending(tx: Tx, seq: int) -> bool:
    """Return whether any row at or below `seq` still waits to be applied."""
    return await tx.fetchone(_PENDING, (seq,)) is not None


async def lock(tx: Tx) -> None:
    """Wait for the applier lock (the applier's try-lock fails meanwhile: it polls as standby)."""
    await tx.execute(_LOCK_TIMEOUT)
    await tx.execute(_LOCK, (INBOX_LOCK,))


async def failed(tx: Tx, seqs: Sequence[int] | None = None) -> list[Row]:
    """Return the kept rows (those of `seqs` only, if given), in seq order."""
    if seqs is None:
        return await tx.fetchall(_FAILED + " ORDER BY seq")
    return await tx.fetchall(_FAILED_OF + " ORDER BY seq", (tx.dialect.ids(seqs),))


async def settle_failed(
    tx: Tx, applied: Sequence[int], failed: Sequence[tuple[int, str]], now: float
) -> None:
    """Delete kept rows that applied now; record the new error of those that failed again."""
    await tx.execute(_FORGET, (tx.dialect.ids(applied),))
    await tx.executemany(_REFAIL, [(error, now, seq) for seq, error in failed])
