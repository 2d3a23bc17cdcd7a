"""Load a PostgreSQL server takes from being watched: maintwatch vs prometheus-postgres-exporter.

For each contender, in one run and side by side: a dedicated login role (so its statements can
be told apart in pg_stat_statements) performs N refreshes/scrapes against a scratch database;
we read that role's statements (calls), server execution + planning time from
pg_stat_statements, and the CPU time of its backends from /proc. Numbers are scaled to one hour
at a 30 s interval and reported as medians over several rounds.

Needs: the local PostgreSQL with pg_stat_statements preloaded, run as root on the database
host (for /proc), and `prometheus-postgres-exporter` (Debian package) on PATH.
Run: .venv/bin/python benchmarks/db_load.py [--refreshes 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from exporter.collectors.base import Context
from exporter.collectors.databases import DatabaseCollector, DatabaseConfig

PER_HOUR = 3600 / 30  # refreshes per hour at the default 30 s interval
CLK_TCK = os.sysconf("SC_CLK_TCK")
BENCH = {"db": "postgres"}  # the scratch database, set by setup()


@dataclass
class Load:
    """What one contender cost the server over one round."""

    calls: float
    exec_ms: float
    cpu_s: float


def admin(dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(host="127.0.0.1", user="postgres", dbname=dbname, autocommit=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def backend_cpu(role: str) -> dict[int, float]:
    """Return CPU seconds (user + system) of each backend of `role`, from /proc."""
    with admin() as conn:
        pids = [
            r[0]
            for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE usename = %s", (role,))
        ]
    out: dict[int, float] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the backend just exited
        out[pid] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def statement_load(role: str) -> tuple[float, float]:
    """Return (calls, exec + plan ms) recorded for `role` across all databases."""
    with admin(BENCH["db"]) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(total_exec_time + total_plan_time), 0)"
            " FROM pg_stat_statements WHERE userid = %s::regrole::oid",
            (role,),
        ).fetchone()
    assert row is not None
    return float(row[0]), float(row[1])


def reset(role: str) -> None:
    with admin(BENCH["db"]) as conn:
        conn.execute(
            "SELECT pg_stat_statements_reset(%s::regrole::oid, 0::oid, 0::bigint)", (role,)
        )


class CpuTracker:
    """Track the CPU time of a role's backends from a starting point (backends come and go)."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.start: dict[int, float] = {}
        self.latest: dict[int, float] = {}

    def begin(self) -> None:
        """Count from now: reset the role's statements and remember current backend CPU."""
        reset(self.role)
        self.start = backend_cpu(self.role)
        self.latest = dict(self.start)

    def sample(self) -> None:
        """Record the latest CPU reading of every backend of the role."""
        self.latest.update(backend_cpu(self.role))

    def used(self) -> float:
        """Return CPU seconds used since begin()."""
        return sum(v - self.start.get(pid, 0.0) for pid, v in self.latest.items())


async def measure(role: str, run: Callable[[CpuTracker], Awaitable[None]]) -> Load:
    """Run one contender and return what it cost the server."""
    tracker = CpuTracker(role)
    tracker.begin()
    await run(tracker)
    calls, exec_ms = statement_load(role)
    return Load(calls, exec_ms, tracker.used())


async def run_maintwatch(
    tracker: CpuTracker, db: str, refreshes: int, features: dict[str, Any]
) -> None:
    role = tracker.role
    config = DatabaseConfig.model_validate(
        {
            "name": "bench",
            "driver": "postgres",
            "dsn": f"postgresql://{role}@127.0.0.1:5432/{db}",
            **features,
        }
    )
    collector = DatabaseCollector(config, Context())
    try:
        for _ in range(refreshes):
            await collector.refresh()
            tracker.sample()
    finally:
        await collector.close()


async def run_postgres_exporter(tracker: CpuTracker, db: str, refreshes: int, binary: str) -> None:
    role = tracker.role
    port = free_port()
    env = {
        **os.environ,
        "DATA_SOURCE_NAME": f"postgresql://{role}@127.0.0.1:5432/{db}?sslmode=disable",
    }
    proc = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(url, timeout=10).read()  # local URL we built
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        tracker.begin()  # the readiness scrape above is not counted
        for _ in range(refreshes):
            urllib.request.urlopen(url, timeout=10).read()  # local URL we built
            tracker.sample()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def setup(count: int) -> tuple[str, list[str]]:
    """Create a scratch database with Laravel-sized tables and one role per contender."""
    tag = uuid.uuid4().hex[:8]
    db = BENCH["db"] = f"mwbench_{tag}"
    roles = [f"mwbench_{i}_{tag}" for i in range(count)]
    with admin() as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
        for role in roles:
            conn.execute(f'CREATE ROLE "{role}" LOGIN IN ROLE pg_monitor, pg_read_all_data')
    with admin(db) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")
        conn.execute(
            "CREATE TABLE jobs (id bigserial primary key, queue varchar(255) not null,"
            " payload text not null, attempts smallint not null, reserved_at integer,"
            " available_at integer not null, created_at integer not null)"
        )
        conn.execute(
            "CREATE TABLE failed_jobs (id bigserial primary key, uuid varchar(255),"
            " connection text, queue text, payload text, exception text,"
            " failed_at timestamp(0) not null default CURRENT_TIMESTAMP)"
        )
        conn.execute(
            "INSERT INTO jobs (queue, payload, attempts, available_at, created_at)"
            " SELECT 'q' || (i % 3), repeat('x', 500), 0, i, i FROM generate_series(1, 5000) i"
        )
        conn.execute(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception)"
            " SELECT i::text, 'database', 'q' || (i % 3),"
            ' \'{"uuid":"\' || i || \'","displayName":"App\\\\Jobs\\\\J\' || (i % 7)'
            " || '\",\"data\":\"' || repeat('x', 2000) || '\"}', 'boom'"
            " FROM generate_series(1, 2000) i"
        )
    return db, roles


def teardown(db: str, roles: list[str]) -> None:
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        for role in roles:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refreshes", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = shutil.which("prometheus-postgres-exporter")
    basic = {"failed_jobs": True, "queue_table": True}
    features: list[tuple[str, dict[str, Any]]] = [
        ("maintwatch: connections (default)", {}),
        ("maintwatch: + failed_jobs, queue_table", basic),
        ("maintwatch: + statements", {**basic, "statements": True}),
        ("maintwatch: + failed_jobs.by_job", {**basic, "statements": True,
                                              "failed_jobs": {"by_job": True}}),
    ]  # fmt: skip
    db, roles = setup(len(features) + 1)
    results: dict[str, list[Load]] = {name: [] for name, _ in features}
    results["postgres_exporter 0.11 (defaults)"] = []

    def mw(extra: dict[str, Any]) -> Callable[[CpuTracker], Awaitable[None]]:
        return lambda t: run_maintwatch(t, db, args.refreshes, extra)

    try:
        for _ in range(args.rounds):
            for (name, extra), role in zip(features, roles, strict=False):
                results[name].append(await measure(role, mw(extra)))
            if binary:
                results["postgres_exporter 0.11 (defaults)"].append(
                    await measure(
                        roles[-1], lambda t: run_postgres_exporter(t, db, args.refreshes, binary)
                    )
                )
    finally:
        teardown(db, roles)
    report(results, args.refreshes, args.rounds)


def report(results: dict[str, list[Load]], refreshes: int, rounds: int) -> None:
    print(f"per hour at a 30 s interval (medians of {rounds} rounds x {refreshes} refreshes)")
    print(f"{'contender':44} {'statements/h':>13} {'server exec ms/h':>17} {'backend CPU s/h':>16}")
    for name, loads in results.items():
        if not loads:
            print(f"{name:44} (not installed)")
            continue
        calls = statistics.median(x.calls for x in loads) / refreshes * PER_HOUR
        exec_ms = statistics.median(x.exec_ms for x in loads) / refreshes * PER_HOUR
        cpu = statistics.median(x.cpu_s for x in loads) / refreshes * PER_HOUR
        print(f"{name:44} {calls:13.0f} {exec_ms:17.1f} {cpu:16.2f}")
    print(
        "(statements and exec time from pg_stat_statements by role; CPU from /proc of the "
        "role's backends, including connection start-up)"
    )


if __name__ == "__main__":
    asyncio.run(main())
