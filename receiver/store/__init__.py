"""Durable state behind one small interface: SQLite (default) or PostgreSQL."""

from __future__ import annotations

from receiver.config import PostgresStore, SqliteStore
from receiver.store.base import (
    Finish,
    IngestResult,
    IntakeRules,
    OutboxRow,
    Recovered,
    Stats,
    Store,
    StoreError,
    StoreUnavailable,
    Wanted,
)


def make_store(config: SqliteStore | PostgresStore) -> Store:
    """Return the store for a config section (not opened yet)."""
    if isinstance(config, PostgresStore):
        from receiver.store.postgres import PostgresBackend

        return PostgresBackend(config)
    from receiver.store.sqlite import SqliteBackend

    return SqliteBackend(config.path)


__all__ = [
    "Finish",
    "IngestResult",
    "IntakeRules",
    "OutboxRow",
    "Recovered",
    "Stats",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "Wanted",
    "make_store",
]
