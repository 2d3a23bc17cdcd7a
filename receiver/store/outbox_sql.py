"""Outbox statements both stores run (SQLite placeholders; `pg()` converts them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from receiver.store.base import Fallback, Finish, OutboxRow, Recovered, priority
from receiver.store.rows import dumps

EXPIRED = (
    "SELECT id, at_most_once, attempts, started_at FROM outbox "
    "WHERE status = 'sending' AND deadline < ?"
)
REQUEUE = "UPDATE outbox SET status = 'pending', next_attempt_at = ?, deadline = NULL WHERE id = ?"
LANE = (
    "SELECT * FROM outbox WHERE status = 'pending' AND channel = ? AND next_attempt_at <= ? "
    "ORDER BY priority, next_attempt_at, id LIMIT ?"
)
DUE_CHANNELS = (
    "SELECT DISTINCT channel FROM outbox WHERE status = 'pending' AND next_attempt_at <= ?"
)
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
