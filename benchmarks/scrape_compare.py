"""Benchmark: /metrics scrape latency, CPU per scrape and RSS — maintwatch vs Debian's exporters.

Builds a world on this machine's servers (PostgreSQL 5432, MariaDB 3306, Redis 6379): scratch
databases with Laravel's queue tables, Laravel queues in Redis under a unique prefix, backup sets
in a temp dir; starts `maintwatch-exporter` with ~1 000 series over all of it, and Debian's
postgres, mysqld and redis exporters on the same servers. Then scrapes them round-robin (so
machine noise hits all alike) with Prometheus' request headers over kept-alive connections, and
reports per run p50/p99 latency and process CPU per scrape, medians over runs. Also the RSS of
each exporter and of `maintwatch-receiver` after a burst of webhooks. Everything it creates is
removed at the end, also on failure.

    .venv/bin/python benchmarks/scrape_compare.py [--quick] [--runs 3] [--scrapes 150] [--json F]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
import psycopg
import pymysql
import redis

PG_SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS pg_stat_statements",
    "CREATE TABLE jobs (id bigserial primary key, queue varchar(255) not null, payload text not"
    " null, attempts smallint not null, reserved_at integer, available_at integer not null,"
    " created_at integer not null)",
    "CREATE TABLE failed_jobs (id bigserial primary key, uuid varchar(255) not null unique,"
    " connection text not null, queue text not null, payload text not null, exception text not"
    " null, failed_at timestamp(0) not null default CURRENT_TIMESTAMP)",
]
MY_SCHEMA = [
    "CREATE TABLE jobs (id bigint unsigned not null auto_increment primary key, queue"
    " varchar(255) not null, payload longtext not null, attempts tinyint unsigned not null,"
    " reserved_at int unsigned null, available_at int unsigned not null, created_at int"
    " unsigned not null)",
    "CREATE TABLE failed_jobs (id bigint unsigned not null auto_increment primary key, uuid"
    " varchar(255) not null unique, connection text not null, queue text not null, payload"
    " longtext not null, exception longtext not null, failed_at timestamp not null default"
    " CURRENT_TIMESTAMP)",
]
# Rows both schemas accept: jobs spread over three queues, some failed jobs.
JOBS = "INSERT INTO jobs (queue, payload, attempts, available_at, created_at) VALUES "
FAILED = "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception) VALUES "
QUEUES = ("default", "high", "mail")
FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "alertmanager"
    / "firing-group.json"
)


@dataclass(frozen=True)
class World:
    """Names of everything one run created, so both benchmarks watch the same things."""

    tag: str
    tmp: Path
    pg_roles: dict[str, str]  # contender → role (also its database name)
    my_db: str
    redis_prefix: str
    redis_queues: list[str]
    backup_sets: int


def seed_rows(execute: Callable[[str], object]) -> None:
    """Insert a few hundred jobs and failed jobs with one statement each."""
    now = int(time.time())
    jobs = ",".join(
        f"('{QUEUES[i % 3]}', '{{}}', 0, {now + i % 7 - 3}, {now - i})" for i in range(300)
    )
    failed = ",".join(
        f"('{uuid.uuid4()}', 'database', '{QUEUES[i % 3]}', '{{}}', 'boom')" for i in range(50)
    )
    execute(JOBS + jobs)  # fixed benchmark rows, no outside input
    execute(FAILED + failed)


@contextlib.contextmanager
def pg_world(tag: str, contenders: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Create one login role and one database (same name) per contender; drop them after."""
    roles = {name: f"mwbench_{tag}_{name}" for name in contenders}
    try:
        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as admin:
            for role in roles.values():
                admin.execute(
                    f'CREATE ROLE "{role}" LOGIN IN ROLE pg_monitor, pg_read_all_data'.encode()
                )
                admin.execute(f'CREATE DATABASE "{role}" OWNER "{role}"'.encode())
        for role in roles.values():
            with psycopg.connect(
                host="127.0.0.1", user="postgres", dbname=role, autocommit=True
            ) as db:
                for statement in PG_SCHEMA:
                    db.execute(statement.encode())
                seed_rows(lambda sql: db.execute(sql.encode()))
        yield roles
    finally:
        with psycopg.connect(host="127.0.0.1", user="postgres", autocommit=True) as admin:
            for role in roles.values():
                admin.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)'.encode())
                admin.execute(f'DROP ROLE IF EXISTS "{role}"'.encode())


@contextlib.contextmanager
def my_world(port: int, name: str) -> Iterator[str]:
    """Create a MariaDB database with Laravel's queue tables on 127.0.0.1:`port`; drop it."""
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"USE `{name}`")
            for statement in MY_SCHEMA:
                cur.execute(statement)
            seed_rows(cur.execute)
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@contextlib.contextmanager
def redis_world(port: int, prefix: str, queues: int) -> Iterator[list[str]]:
    """Write Laravel queues (pending with createdAt, delayed, reserved); delete the keys after."""
    client = redis.Redis(host="127.0.0.1", port=port)
    names = [f"q{n:04d}" for n in range(queues)]
    try:
        pipe = client.pipeline(transaction=False)
        now = int(time.time())
        for n, queue in enumerate(names):
            base = f"{prefix}queues:{queue}"
            for j in range(1 + n % 3):
                pipe.rpush(base, json.dumps({"uuid": f"{n}-{j}", "createdAt": now - j}))
            pipe.zadd(f"{base}:delayed", {f"d{n}": now + 60})
            pipe.zadd(f"{base}:reserved", {f"r{n}": now + 90})
        pipe.execute()
        yield names
    finally:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()


def make_backups(root: Path, sets: int) -> None:
    """Write `sets` backup sets of three small, complete, settled .sql.gz dumps each."""
    old = time.time() - 7200  # older than `settle`, so they are verified at once
    for s in range(sets):
        directory = root / f"set{s:02d}"
        directory.mkdir(parents=True)
        for day in range(3):
            path = directory / f"app_db_2025050{day + 1}020000.sql.gz"
            dump = b"-- MariaDB dump\nINSERT INTO t VALUES (1);\n-- Dump completed on 2025-05-01\n"
            path.write_bytes(gzip.compress(dump * (day + 1)))
            os.utime(path, (old + day, old + day))


def exporter_config(
    world: World, pg_role: str, mysql_port: int, redis_port: int, interval: str, ticker: bool
) -> str:
    """Return maintwatch-exporter YAML watching the world (queue features on both databases).

    With `ticker`, one more backup set (an empty directory) refreshes every 20 ms, so the
    snapshot changes before nearly every scrape and each scrape encodes it anew.
    """
    sets = "".join(
        f"  - {{name: set{s:02d}, directory: {world.tmp}/backups/set{s:02d},"
        f" timestamp: 'app_db_%Y%m%d%H%M%S.sql.gz', timezone: UTC}}\n"
        for s in range(world.backup_sets)
    )
    if ticker:
        (world.tmp / "tick").mkdir(exist_ok=True)
        sets += f"  - {{name: tick, directory: {world.tmp}/tick, interval: 20ms, timeout: 20ms}}\n"
    features = "failed_jobs: true, queue_table: {queues: [default, high, mail]}"
    return (
        f"defaults: {{interval: {interval}, timeout: 10s}}\n"
        f"backups:\n{sets}"
        "databases:\n"
        f"  - {{name: pg, driver: postgres, dsn: 'postgresql://{pg_role}@127.0.0.1:5432/{pg_role}',"
        f" {features}, statements: {{top: 20}}}}\n"
        f"  - {{name: maria, driver: mysql, dsn: 'mysql://root@127.0.0.1:{mysql_port}/{world.my_db}',"
        f" {features}, statements: {{digests: false}}}}\n"
        "redis:\n"
        f"  - {{name: laravel, url: 'redis://127.0.0.1:{redis_port}/0', flavor: laravel,"
        f" prefix: '{world.redis_prefix}', queues: [{', '.join(world.redis_queues)}],"
        f" max_queues: {len(world.redis_queues) + 10}}}\n"
    )


def enter_world(
    stack: contextlib.ExitStack, tmp: Path, mysql_port: int, redis_port: int, queues: int, sets: int
) -> World:
    """Create the watched world on the given MariaDB and Redis ports (PostgreSQL on 5432)."""
    tag = uuid.uuid4().hex[:8]
    roles = stack.enter_context(pg_world(tag, ("ours", "pgexp")))
    my_db = stack.enter_context(my_world(mysql_port, f"mwbench_{tag}"))
    prefix = f"mwbench{tag}_"
    names = stack.enter_context(redis_world(redis_port, prefix, queues))
    make_backups(tmp / "backups", sets)
    return World(tag, tmp, roles, my_db, prefix, names, sets)


@dataclass
class Contender:
    """One running exporter: its name in the tables, process and port."""

    name: str
    service: common.Service
    port: int


def start_maintwatch(
    world: World, ports: tuple[int, int], interval: str, started: list[common.Service], fresh: bool
) -> Contender:
    """Start maintwatch-exporter on the world; `fresh`: with the 20 ms ticker (see config)."""
    name = "maintwatch-fresh" if fresh else "maintwatch"
    config = world.tmp / f"{name}.yml"
    role = world.pg_roles["ours"]
    config.write_text(exporter_config(world, role, *ports, interval, ticker=fresh))
    # The ticker's 20 ms timeout may expire on a busy machine; its refreshes count anyway.
    service, port = common.start_maintwatch(config, world.tmp, started, name, ("tick",))
    return Contender(name, service, port)


def start_contenders(
    world: World,
    mysql_port: int,
    redis_port: int,
    interval: str,
    started: list[common.Service],
    fresh: bool = False,
) -> list[Contender]:
    """Start maintwatch (also its ticking twin if `fresh`), then Debian's installed exporters."""
    ports = (mysql_port, redis_port)
    out = [start_maintwatch(world, ports, interval, started, fresh=False)]
    if fresh:
        out.append(start_maintwatch(world, ports, interval, started, fresh=True))
    role = world.pg_roles["pgexp"]
    dsn = f"postgresql://{role}@127.0.0.1:5432/{role}?sslmode=disable"
    if common.tool("prometheus-postgres-exporter"):
        service, port = common.start_postgres_exporter(dsn, world.tmp, started)
        out.append(Contender("postgres_exporter", service, port))
    if common.tool("prometheus-mysqld-exporter"):
        service, port = common.start_mysqld_exporter(mysql_port, world.tmp, started)
        out.append(Contender("mysqld_exporter", service, port))
    if common.tool("prometheus-redis-exporter"):
        service, port = common.start_redis_exporter(redis_port, world.tmp, started)
        out.append(Contender("redis_exporter", service, port))
    return out


def idle_cpu_rates(contenders: list[Contender], seconds: float) -> dict[str, float]:
    """Return each exporter's CPU seconds per second while nobody scrapes it."""
    cpu0 = {c.name: common.proc_cpu_seconds(c.service.pid) for c in contenders}
    began = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - began
    return {
        c.name: (common.proc_cpu_seconds(c.service.pid) - cpu0[c.name]) / elapsed
        for c in contenders
    }


def scrape_runs(
    contenders: list[Contender], runs: int, scrapes: int, idle: dict[str, float]
) -> dict[str, Any]:
    """Scrape round-robin; per run p50/p99 and CPU per scrape net of idle; medians over runs."""
    scrapers = {c.name: common.Scraper(c.port) for c in contenders}
    per_run: dict[str, list[dict[str, float]]] = {c.name: [] for c in contenders}
    try:
        for _ in range(runs):
            began = time.monotonic()
            cpu0 = {c.name: common.proc_cpu_seconds(c.service.pid) for c in contenders}
            latencies: dict[str, list[float]] = {c.name: [] for c in contenders}
            for _ in range(scrapes):
                for c in contenders:
                    latencies[c.name].append(scrapers[c.name].timed())
            elapsed = time.monotonic() - began
            for c in contenders:
                cpu = common.proc_cpu_seconds(c.service.pid) - cpu0[c.name]
                cpu -= idle[c.name] * elapsed  # background refreshes are not scrape work
                per_run[c.name].append({
                    "p50_ms": common.percentile(latencies[c.name], 50) * 1000,
                    "p99_ms": common.percentile(latencies[c.name], 99) * 1000,
                    "cpu_ms_per_scrape": cpu / scrapes * 1000,
                })  # fmt: skip
    finally:
        for scraper in scrapers.values():
            scraper.close()
    return {
        name: {key: round(common.median([r[key] for r in runs_]), 3) for key in runs_[0]}
        | {"runs": runs_}
        for name, runs_ in per_run.items()
    }


def alert_body(index: int) -> bytes:
    """Return a real Alertmanager payload (fixture) made into a new group number `index`."""
    payload = json.loads(FIXTURE.read_text())
    payload["groupKey"] = f'{{}}:{{alertname="BackupTooOld",n="{index}"}}'
    for alert in payload["alerts"]:
        alert["fingerprint"] = f"{index:012x}{alert['fingerprint'][:4]}"
    return json.dumps(payload).encode()


def receiver_rss(tmp: Path, webhooks: int, started: list[common.Service]) -> dict[str, float]:
    """Start maintwatch-receiver (SQLite), post `webhooks` new groups, return its RSS in MB."""
    port = common.free_port()
    config = tmp / "receiver.yml"
    config.write_text(
        f"store: {{type: sqlite, path: {tmp}/receiver.db}}\nwebhook: {{auth: none}}\n"
    )
    argv = [str(common.VENV_BIN / "maintwatch-receiver"), f"--config.file={config}",
            f"--web.listen-address=127.0.0.1:{port}", "--log.level=warning"]  # fmt: skip
    service = common.Service("maintwatch-receiver", argv, tmp).start()
    started.append(service)
    common.wait_ready(service, port, "/-/ready")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for index in range(webhooks):
            conn.request("POST", "/webhooks/alertmanager", body=alert_body(index),
                         headers={"Content-Type": "application/json"})  # fmt: skip
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"receiver answered {response.status}:\n{service.tail()}")
    finally:
        conn.close()
    return common.rss_mb(service.pid) | {"webhooks": webhooks}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the world, start every exporter, scrape, measure RSS; clean everything up."""
    with (
        tempfile.TemporaryDirectory(prefix="mw-scrape-bench-") as tmp_name,
        contextlib.ExitStack() as stack,
    ):
        tmp = Path(tmp_name)
        world = enter_world(stack, tmp, 3306, 6379, args.queues, args.sets)
        started = stack.enter_context(common.services())  # stopped before the world is dropped
        contenders = start_contenders(world, 3306, 6379, "15s", started, fresh=True)
        series = {c.name: common.series_count(common.fetch(c.port)) for c in contenders}
        idle = idle_cpu_rates(contenders, args.idle)
        scrape = scrape_runs(contenders, args.runs, args.scrapes, idle)
        rss = {c.name: common.rss_mb(c.service.pid) for c in contenders}
        rss["maintwatch-receiver"] = receiver_rss(tmp, args.webhooks, started)
    return {"series": series, "scrape": scrape, "rss": rss, "runs": args.runs, "idle_cpu": idle,
            "scrapes_per_run": args.scrapes, "machine": common.machine()}  # fmt: skip


def report(result: dict[str, Any]) -> None:
    """Print the comparison table."""
    print(f"{result['runs']} runs x {result['scrapes_per_run']} scrapes each, round-robin")
    print(
        f"{'exporter':<20}{'series':>7}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/scrape':>15}{'RSS MB':>8}"
    )
    for name, s in result["scrape"].items():
        print(f"{name:<20}{result['series'][name]:>7}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}"
              f"{s['cpu_ms_per_scrape']:>15.2f}{result['rss'][name]['rss']:>8.1f}")  # fmt: skip
    rcv = result["rss"]["maintwatch-receiver"]
    print(
        f"maintwatch-receiver RSS {rcv['rss']:.1f} MB (peak {rcv['hwm']:.1f})"
        f" after {rcv['webhooks']:.0f} webhooks"
    )


def main() -> None:
    """Parse flags, run, print, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, seconds")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scrapes", type=int, default=150, help="scrapes per exporter per run")
    parser.add_argument("--queues", type=int, default=200, help="Laravel queues in Redis")
    parser.add_argument("--sets", type=int, default=10, help="backup sets")
    parser.add_argument("--webhooks", type=int, default=500, help="webhooks before receiver RSS")
    parser.add_argument("--idle", type=float, default=5.0, help="seconds to measure idle CPU")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.scrapes, args.queues, args.sets, args.webhooks = 1, 5, 10, 2, 5
        args.idle = 0.5
    result = run(args)
    report(result)
    if args.json:
        common.write_json(args.json, result)


if __name__ == "__main__":
    common.be_nice()
    main()
