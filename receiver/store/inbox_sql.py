"""The PostgreSQL inbox table: appends, and the applier's take-apply-delete transaction."""

from __future__ import annotations

from collections.abc import Sequence

from receiver.store.tx import Row, Tx, one

# pg_try_advisory_xact_lock key: one applier applies at a time across replicas, so a group's
# webhooks (each sent only after the previous one's 200) are applied in the order accepted.
INBOX_LOCK = 0x6D77_6962

# unnest keeps one statement text for every batch size; nextval runs in array order.
_APPEND = (
    "INSERT INTO inbox (received_at, body) "
    "SELECT * FROM unnest(?::double precision[], ?::bytea[]) RETURNING seq"
)
_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(?) AS got"
_TAKE = "SELECT seq, received_at, body FROM inbox ORDER BY seq LIMIT ?"
_KEEP_FAILED = (
    "INSERT INTO inbox_failed (seq, received_at, body, error, failed_at) "
    "SELECT seq, received_at, body, ?, ? FROM inbox WHERE seq = ?"
)
_DELETE = "DELETE FROM inbox WHERE seq {any}"
_PENDING = "SELECT 1 AS found FROM inbox WHERE seq <= ? LIMIT 1"


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
