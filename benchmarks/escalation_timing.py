"""Escalation timing: 10 000 open incidents with running timers, an hour of simulated time.

The store is real (SQLite file and a PostgreSQL database, side by side in one run); the clock
is simulated. The worker's loop is replayed exactly: it wakes at the earliest timer (at most
`poll_interval` later), runs one tick, and the real duration of that tick advances the
simulated clock, so a step's lateness = (tick start - due time) + tick duration, including
waiting behind a full batch. Reports lateness percentiles, tick durations (target < 100 ms),
and the process's RSS every 10 simulated minutes (should stay flat).

    .venv/bin/python benchmarks/escalation_timing.py [--incidents 10000] [--hours 1]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from common import median, percentile, rss_mb

from receiver.app import intake_rules
from receiver.config import PostgresStore, SqliteStore, load_config_text
from receiver.escalation.worker import EscalationWorker, EscalatorMetrics
from receiver.intake.payload import parse_payload
from receiver.store import IntakeRules, Store, make_store

T0 = 1_795_000_000.0
CONFIG = """
webhook: {auth: none}
channels: [{name: log, type: file, path: /dev/null}]
people: [{id: ann, name: Ann}, {id: bob, name: Bob}, {id: cy, name: Cy}]
policies:
  - name: ops
    repeat: 3
    repeat_after: 15m
    steps:
      - {after: 0s, notify: [person:ann], via: [log]}
      - {after: 5m, notify: [person:bob], via: [log]}
      - {after: 10m, notify: [person:cy], via: [log]}
default_route: {policy: ops}
"""
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


class Log:
    """A logger that drops events (the benchmark measures the worker, not logging)."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def body(index: int) -> bytes:
    """Return a webhook payload opening one incident."""
    alert = {
        "status": "firing",
        "labels": {"alertname": "Bench", "severity": "critical", "n": str(index)},
        "annotations": {"summary": f"incident {index}"},
        "startsAt": "2026-11-18T11:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"fp{index}",
    }
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{n="{index}"}}',
            "receiver": "bench",
            "status": "firing",
            "alerts": [alert],
            "groupLabels": {"n": str(index)},
            "commonLabels": alert["labels"],
        }
    ).encode()


async def open_incidents(store: Store, rules: IntakeRules, count: int, spread: float) -> None:
    """Open `count` incidents, evenly spread over the first `spread` seconds."""
    batch = 200
    for start in range(0, count, batch):
        items = range(start, min(count, start + batch))
        await asyncio.gather(
            *(store.ingest(parse_payload(body(i)), T0 + spread * i / count, rules) for i in items)
        )


class Clock:
    """The simulated clock."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


async def simulate(store: Store, rules: IntakeRules, hours: float, poll: float) -> dict[str, Any]:
    """Replay the worker's loop over `hours` of simulated time; return the measurements."""
    from prometheus_client import CollectorRegistry

    config = load_config_text(CONFIG + f"escalation: {{poll_interval: {poll}s}}\n").escalation
    clock = Clock()
    worker = EscalationWorker(
        store, rules, config, EscalatorMetrics(CollectorRegistry()), Log(), clock
    )
    late: list[float] = []
    ticks: list[float] = []
    rss: list[float] = []
    end, next_sample = T0 + hours * 3600, T0
    while clock.now < end:
        started = time.perf_counter()
        fired = await worker.run_once()
        took = time.perf_counter() - started
        ticks.append(took)
        late += [clock.now - f.due_at + took for f in fired if f.acted]
        clock.now += took
        if clock.now >= next_sample:
            gc.collect()
            rss.append(rss_mb(_pid())["rss"])
            next_sample += 600
        if len(fired) < config.batch_size:
            upcoming = await store.next_timer()
            wake = clock.now + poll if upcoming is None else min(upcoming, clock.now + poll)
            clock.now = max(clock.now, wake)
    return {
        "steps": len(late),
        "ticks": len(ticks),
        "late_p50_ms": round(median(late) * 1000, 2),
        "late_p99_ms": round(percentile(late, 99) * 1000, 2),
        "late_max_ms": round(max(late) * 1000, 2),
        "late_over_1s": sum(1 for x in late if x > 1.0),
        "tick_p50_ms": round(median(ticks) * 1000, 2),
        "tick_p99_ms": round(percentile(ticks, 99) * 1000, 2),
        "tick_max_ms": round(max(ticks) * 1000, 2),
        "rss_mb_every_10min": [round(x, 1) for x in rss],
    }


def _pid() -> int:
    import os

    return os.getpid()


async def run(kind: str, incidents: int, hours: float, poll: float, tmp: Path) -> dict[str, Any]:
    """Run the benchmark on one store kind."""
    rules = intake_rules(load_config_text(CONFIG))
    name = "mwbench" + uuid.uuid4().hex[:8]
    if kind == "postgres":
        async with await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True) as admin:
            await admin.execute(f'CREATE DATABASE "{name}"')
        dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
        store = make_store(PostgresStore(type="postgres", dsn=dsn))
    else:
        store = make_store(SqliteStore(path=tmp / f"{name}.db"))
    await store.open()
    try:
        started = time.perf_counter()
        await open_incidents(store, rules, incidents, spread=600.0)
        opened = time.perf_counter() - started
        result = await simulate(store, rules, hours, poll)
        return {"store": kind, "open_seconds": round(opened, 1), **result}
    finally:
        await store.close()
        if kind == "postgres":
            async with await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True) as admin:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def main() -> None:
    """Run both stores side by side and print the results as JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.stores.split(","):
            result = await run(kind, args.incidents, args.hours, args.poll, Path(tmp))
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
