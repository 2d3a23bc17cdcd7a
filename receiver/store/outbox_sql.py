"""The outbox's transactions: recover expired claims, claim due rows, start and finish."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from receiver.delivery.lanes import Picker, Wanted, priority, rate_limit
from receiver.store import queries as q
from receiver.store import rows
from receiver.store.base import Fallback, Finish, OutboxRow, Recovered
from receiver.store.rows import dumps
from receiver.store.tx import Tx

EXPIRED = (
    "SELECT id, at_most_once, attempts, started_at FROM outbox "
    "WHERE status = 'sending' AND deadline < ?{skip_locked}"
)
REQUEUE = "UPDATE outbox SET status = 'pending', next_attempt_at = ?, deadline = NULL WHERE id = ?"
LANE = (
    "SELECT * FROM outbox WHERE status = 'pending' AND channel = ? AND next_attempt_at <= ? "
    "ORDER BY priority, next_attempt_at, id LIMIT ?{skip_locked}"
)
DUE_CHANNELS = (
    "SELECT DISTINCT channel FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?"
)
# Serializes rate checks for one person across replicas (nothing to do with one writer).
RATE_LOCK = "SELECT pg_advisory_xact_lock(hashtext(?))"
RECENT = "SELECT sent_at FROM outbox WHERE rate_key = ? AND sent_at > ?"
DEFER = "UPDATE outbox SET next_attempt_at = ? WHERE id = ?"
CLAIM = (
    "UPDATE outbox SET status = 'sending', attempts = attempts + 1, deadline = ?, "
    "sent_at = COALESCE(sent_at, ?) WHERE id = ?"
)
# The earliest start stays: a later check asks the provider for everything since then.
START = (
    "UPDATE outbox SET started_at = COALESCE(started_at, ?) "
    "WHERE id = ? AND status = 'sending' AND attempts = ?"
)
FINISH = (
    "UPDATE outbox SET status = ?, next_attempt_at = COALESCE(?, next_attempt_at), "
    "finished_at = ?, last_error = ?, provider_id = ?, deadline = NULL, thread = ?, "
    "started_at = CASE WHEN ? THEN started_at END "
    "WHERE id = ? AND status = 'sending' AND attempts = ?"
)


def claim_order(row: Mapping[str, Any]) -> tuple[int, float, int]:
    """Return the order in which due rows of several lanes are considered."""
    return (row["priority"], row["next_attempt_at"], row["id"])


def recovery(row: Mapping[str, Any]) -> tuple[str, str]:
    """Return the delivery-log outcome and detail for a row found `sending` past its lease."""
    if not row["at_most_once"]:
        return "lease_expired", "found in sending after its deadline; retrying"
    if row["started_at"] is None:
        return "lease_expired", "found in sending before its request left; sending"
    return (
        "lease_expired",
        "found in sending after its request may have left; checking before resending",
    )


def finish_params(row: OutboxRow, result: Finish) -> tuple[object, ...]:
    """Return FINISH parameters for an attempt's result, fenced by the claim's attempt."""
    done = result.outcome != "pending"
    return (
        result.outcome,
        result.next_attempt_at,
        result.now if done else None,
        "" if result.outcome == "sent" else result.detail,
        result.provider_id,
        dumps(result.thread),
        result.maybe_sent or done,
        row.id,
        row.attempts,
    )


def fallback_params(row: OutboxRow, fallback: Fallback, now: float) -> tuple[object, ...]:
    """Return INSERT_OUTBOX parameters for the fallback copy of a message."""
    return (
        row.incident_id,
        fallback.channel,
        row.kind,
        row.recipient,
        dumps(row.body),
        fallback.at_most_once,
        fallback.rate_key,
        now,
        now,
        row.id,
        priority(row.body),
    )


def recovered(found: Sequence[Mapping[str, Any]]) -> Recovered:
    """Sort recovered rows: resent as they are, or checked with the provider first."""
    unsure = tuple(r["id"] for r in found if r["at_most_once"] and r["started_at"] is not None)
    return Recovered(tuple(r["id"] for r in found if r["id"] not in unsure), unsure)


def log_outcome(result: Finish) -> str:
    """Return the delivery-log outcome of an attempt's result."""
    return "retry" if result.outcome == "pending" else result.outcome


async def recover(tx: Tx, now: float) -> Recovered:
    """Make rows left in `sending` past their lease due again, and log why."""
    found = await tx.fetchall(EXPIRED, (now,))
    for row in found:
        await tx.execute(REQUEUE, (now, row["id"]))
        await tx.execute(q.DELIVERY, (row["id"], row["attempts"], now, *recovery(row)))
    return recovered(found)


async def claim(
    tx: Tx, now: float, wanted: Wanted, lease: float, max_messages: int, window: float
) -> list[OutboxRow]:
    """Claim due rows lane by lane; rows another replica holds are skipped, not waited for."""
    picker = Picker(wanted)
    channels = [r["channel"] for r in await tx.fetchall(DUE_CHANNELS, (now,))]
    due = []
    for lane, limit in picker.lanes(channels):
        due += await tx.fetchall(LANE, (lane, now, limit))
    claimed = []
    for row in sorted(due, key=claim_order):
        if not picker.fits(row["channel"], row["recipient"]):
            continue
        if row["rate_key"] is not None and await _deferred(tx, row, now, max_messages, window):
            continue
        await tx.execute(CLAIM, (now + lease, now, row["id"]))
        picker.take(row["channel"], row["recipient"])
        claimed.append(rows.outbox_row(row, row["attempts"] + 1))
    return claimed


async def _deferred(
    tx: Tx, row: Mapping[str, Any], now: float, max_messages: int, window: float
) -> bool:
    if tx.dialect.row_locks:
        await tx.execute(RATE_LOCK, (row["rate_key"],))
    recent = await tx.fetchall(RECENT, (row["rate_key"], now - window))
    until = rate_limit([r["sent_at"] for r in recent], now, max_messages, window)
    if until is None:
        return False
    await tx.execute(DEFER, (until, row["id"]))
    return True


async def start(tx: Tx, row: OutboxRow, now: float) -> bool:
    """Commit the start mark, fenced by the claim's attempt number."""
    return await tx.execute(START, (now, row.id, row.attempts)) == 1


async def finish(tx: Tx, row: OutboxRow, result: Finish) -> bool:
    """Record an attempt's result, fenced by the claim's attempt number."""
    if await tx.execute(FINISH, finish_params(row, result)) == 0:
        return False
    log = (row.id, row.attempts, result.now, log_outcome(result), result.detail)
    await tx.execute(q.DELIVERY, log)
    if result.fallback is not None:
        await tx.execute(q.INSERT_OUTBOX, fallback_params(row, result.fallback, result.now))
    return True
