"""Store growth over a simulated year, retention on vs off, on SQLite and PostgreSQL.

The real store code runs with a clock moved by hand: every simulated day `--per-day` alert
groups fire (3 alerts, 2 channels), their pages are delivered (claim + finish, as the worker
does), they resolve a few hours later and those messages are delivered too. With retention
on, `Retention.run_once` runs once per simulated day with the defaults (resolved incidents
90 days, delivered notifications 30 days). Prints rows per table and database size.

PostgreSQL only reuses deleted rows' space after VACUUM. The shared test server runs with
autovacuum off, so this runs `VACUUM ANALYZE` once per simulated week in both modes, as
autovacuum would on a production server.

    .venv/bin/python benchmarks/receiver_retention.py [--days 365] [--per-day 50]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
import structlog
from prometheus_client import CollectorRegistry

from receiver.app import intake_rules
from receiver.config import PostgresStore, RetentionConfig, SqliteStore, load_config_text
from receiver.intake.payload import parse_payload
from receiver.store import Finish, IntakeRules, Store, Wanted, make_store
from receiver.store.retention import Retention, RetentionMetrics
from receiver.store.tx import Tx, one

DAY = 86400.0
START = 1_767_225_600.0  # 2026-01-01
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
ALL_DUE = Wanted({}, per_recipient=1, strays=500)  # up to 500 due rows per claim, any channel
TABLES = ("alert_groups", "incidents", "incident_alerts", "outbox", "deliveries")
CONFIG = """
webhook: {auth: none}
channels: [{name: a, type: console}, {name: b, type: console}]
default_route: {channels: [a, b]}
"""


def body(group: str, starts: float, resolved_at: float | None) -> bytes:
    """Return a webhook for one group of three alerts."""
    status = "resolved" if resolved_at else "firing"
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(starts))
    ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(resolved_at or 0))
    alerts = [
        f'{{"status":"{status}","labels":{{"alertname":"Sim","severity":"critical","g":"{group}",'
        f'"i":"{i}"}},"annotations":{{"summary":"simulated alert {i} of {group}"}},'
        f'"startsAt":"{stamp}","endsAt":"{ends}","generatorURL":"http://prom/graph",'
        f'"fingerprint":"{group}-{i}"}}'
        for i in range(3)
    ]
    return (
        f'{{"version":"4","groupKey":"{{}}:{{g=\\"{group}\\"}}","receiver":"sim",'
        f'"status":"{status}","alerts":[{",".join(alerts)}],"groupLabels":{{"g":"{group}"}},'
        f'"commonLabels":{{"alertname":"Sim","severity":"critical","g":"{group}"}},'
        f'"commonAnnotations":{{}},"externalURL":"http://am","truncatedAlerts":0}}'
    ).encode()


async def deliver(store: Store, now: float) -> None:
    """Claim every due message and record it sent."""
    while rows := await store.claim(now, ALL_DUE, 60.0, 10**9, 60.0):
        for row in rows:
            await store.finish(row, Finish("sent", now))


async def simulate_day(store: Store, rules: IntakeRules, day: int, per_day: int) -> None:
    """Fire, deliver, resolve and deliver one day's groups (group keys recur weekly)."""
    opened = START + day * DAY + 3600
    groups = [f"d{day % 7}-{n}" for n in range(per_day)]
    firing = [parse_payload(body(g, opened, None)) for g in groups]
    await asyncio.gather(*(store.ingest(p, opened, rules) for p in firing))
    await deliver(store, opened + 60)
    closed = opened + 4 * 3600
    resolved = [parse_payload(body(g, opened, closed)) for g in groups]
    await asyncio.gather(*(store.ingest(p, closed, rules) for p in resolved))
    await deliver(store, closed + 60)


async def rows(store: Store, kind: str, where: Any) -> dict[str, int]:
    """Return row counts per table."""
    out = {}
    for table in TABLES:
        sql = f"SELECT COUNT(*) AS n FROM {table}"  # noqa: S608 - fixed table names
        out[table] = await store.transaction(_count, sql)
    return out


async def _count(tx: Tx, sql: str) -> int:
    return int((await one(tx, sql))["n"])


async def size_mb(kind: str, where: Any) -> float:
    """Return the database size in MiB (SQLite: file + WAL)."""
    if kind == "sqlite":
        path = Path(where)
        files = [path, path.with_name(path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists()) / 2**20
    conn = await psycopg.AsyncConnection.connect(where)
    async with conn:
        cursor = await conn.execute("SELECT pg_database_size(current_database())")
        found = await cursor.fetchone()
    return float(found[0] if found else 0) / 2**20


async def vacuum(dsn: str) -> None:
    """Run VACUUM ANALYZE (what autovacuum does; it cannot run inside a transaction)."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with conn:
        await conn.execute("VACUUM ANALYZE")


@asynccontextmanager
async def opened(kind: str, folder: Path) -> AsyncIterator[tuple[Store, Any]]:
    """Yield a fresh store of `kind` and where it lives (file path or DSN)."""
    if kind == "sqlite":
        path = folder / f"{uuid.uuid4().hex}.db"
        store = make_store(SqliteStore(path=path))
        await store.open()
        try:
            yield store, path
        finally:
            await store.close()
        return
    name = "mwret" + uuid.uuid4().hex[:10]
    admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True)
    async with admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    store = make_store(PostgresStore(type="postgres", dsn=dsn))
    await store.open()
    try:
        yield store, dsn
    finally:
        await store.close()
        admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True)
        async with admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(kind: str, prune: bool, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """Simulate the year on one store; return counts, size and timings."""
    rules = intake_rules(load_config_text(CONFIG))
    async with opened(kind, folder) as (store, where):
        clock = [START]
        retention = Retention(
            store,
            RetentionConfig(),
            RetentionMetrics(CollectorRegistry()),
            structlog.get_logger("bench"),
            clock=lambda: clock[0],
        )
        started, prune_seconds = time.perf_counter(), 0.0
        for day in range(args.days):
            await simulate_day(store, rules, day, args.per_day)
            clock[0] = START + (day + 1) * DAY
            if prune:
                before = time.perf_counter()
                await retention.run_once()
                prune_seconds += time.perf_counter() - before
            if kind == "postgres" and day % 7 == 6:
                await vacuum(where)
        counts = await rows(store, kind, where)
        return {
            "store": kind,
            "retention": "on" if prune else "off",
            **counts,
            "size_mb": round(await size_mb(kind, where), 1),
            "seconds": round(time.perf_counter() - started, 1),
            "prune_seconds": round(prune_seconds, 1),
        }


async def main(args: argparse.Namespace) -> int:
    """Run every combination and print a table."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    results = []
    with tempfile.TemporaryDirectory(prefix="mw-retention-") as tmp:
        for kind in args.stores:
            for prune in (False, True):
                results.append(await run(kind, prune, args, Path(tmp)))
                print(results[-1], flush=True)
    keys = list(results[0])
    print(f"\n{args.days} simulated days, {args.per_day} incidents/day")
    print(" | ".join(keys))
    for result in results:
        print(" | ".join(str(result[k]) for k in keys))
    return 0


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=50)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"])
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
