"""Apply the migrations a database has not seen yet (one source, rendered per dialect)."""

from __future__ import annotations

import re

from receiver.store import rows
from receiver.store.tx import Tx, one

_MIGRATION_LOCK = 0x6D77_7263  # pg_advisory_xact_lock key: one replica migrates at a time


async def migrate(tx: Tx) -> None:
    """Bring the schema up to date inside the caller's transaction."""
    if tx.dialect.row_locks:
        await tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
    await tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    current = (await one(tx, "SELECT MAX(version) AS v FROM schema_version"))["v"] or 0
    for version, sql in rows.migrations():
        if version > current:
            # Comments may hold semicolons; the migrations have no "--" in string literals.
            plain = re.sub(r"--[^\n]*", "", tx.dialect.schema(sql))
            for statement in filter(str.strip, plain.split(";")):
                await tx.execute(statement)
            await tx.execute("INSERT INTO schema_version VALUES (?)", (version,))
