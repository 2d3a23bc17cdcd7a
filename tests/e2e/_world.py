"""The world the e2e exporter watches: backup sets, a certificate, a Laravel database.

Laid out relative to one moment; scenarios change it from the outside (age a backup, write a
fresh one, insert a failed job) the way cron jobs and applications would.
"""

from __future__ import annotations

import gzip
import json
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maintwatch.demo import world as demo_world
from tests.exporter._db_helpers import PG, PG_SCHEMA, pg_admin

HOUR = 3600.0
STALE_SET = "orders"  # BackupTooOld: its newest file is aged past 2 x max_age by the scenario
JUMPED_SET = "reports"  # BackupSizeJumped (info): newest dump 3 x the previous one from the start
CERT_TARGET = "shop_cert"  # a leaf certificate that expires in 5 days (critical tier: < 7 d)
DATABASE = "shop"  # the Laravel database whose failed_jobs table gets a row


@dataclass(frozen=True)
class World:
    """Paths and names of the built world."""

    root: Path
    backups: Path
    database: str

    def age_newest(self, seconds: float) -> Path:
        """Set the stale set's newest file's mtime `seconds` into the past (no new backup ran)."""
        newest = max((self.backups / STALE_SET).iterdir(), key=lambda p: p.stat().st_mtime)
        when = time.time() - seconds
        os.utime(newest, (when, when))
        return newest

    def write_fresh_backup(self) -> Path:
        """Write a new dump into the stale set, as the nightly job would."""
        return _dump(self.backups / STALE_SET, "orders-fresh", time.time(), rows=50)

    def fail_job(self, queue: str = "emails") -> None:
        """Record one failed job, as Laravel does when a job exhausts its tries."""
        insert_failed_job(self.database, queue)


def insert_failed_job(database: str, queue: str) -> None:
    """Insert one row into Laravel's `failed_jobs` table."""
    payload = json.dumps({"displayName": "App\\Jobs\\SendInvoice", "job": "CallQueuedHandler"})
    with pg_admin(database) as conn:
        conn.execute(
            "INSERT INTO failed_jobs (uuid, connection, queue, payload, exception)"
            " VALUES (%s, 'redis', %s, %s, %s)",
            (str(uuid.uuid4()), queue, payload, "RuntimeException: SMTP timeout"),
        )


def _dump(directory: Path, stem: str, when: float, rows: int) -> Path:
    # Dump text written to a file, never run against a database.
    lines = [f"INSERT INTO t VALUES ({i}, 'row {i} of {stem}');" for i in range(rows)]  # noqa: S608
    body = "\n".join(["-- MariaDB dump", *lines, "-- Dump completed"]) + "\n"
    path = directory / f"{stem}.sql.gz"
    path.write_bytes(gzip.compress(body.encode(), mtime=int(when)))
    os.utime(path, (when, when))
    return path


def _backup_sets(backups: Path, now: float) -> None:
    (backups / STALE_SET).mkdir(parents=True)
    _dump(backups / STALE_SET, "orders-1", now - 600, rows=50)
    (backups / JUMPED_SET).mkdir(parents=True)
    _dump(backups / JUMPED_SET, "reports-1", now - 25 * HOUR, rows=40)
    # Many distinct lines so gzip cannot hide the growth: the newest is far above 2 x.
    _dump(backups / JUMPED_SET, "reports-2", now - 1 * HOUR, rows=4000)


@contextmanager
def laravel_database(name: str) -> Iterator[str]:
    """Create a PostgreSQL database with Laravel's queue tables; drop it (forcibly) at the end."""
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        with pg_admin(name) as conn:
            for statement in PG_SCHEMA:
                conn.execute(statement.encode())  # fixed test DDL, not user input
        # One old failure, so the counter's `emails` series exists (at 0) before the scenario:
        # increase() does not count a series that first appears already at 1.
        insert_failed_job(name, "emails")
        yield name
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build(root: Path, database: str) -> World:
    """Lay out backups and the 5-day certificate under `root`."""
    now = time.time()
    _backup_sets(root / "backups", now)
    # The demo's certificate writer: a CA and a leaf expiring in CERT_DAYS_LEFT (5) days.
    demo_world.write_certificates(root / "certs", now)
    return World(root=root, backups=root / "backups", database=database)


def exporter_config(world: World) -> dict[str, Any]:
    """Return the exporter config watching the world, refreshing every second."""
    certs = world.root / "certs"
    return {
        "defaults": {"interval": "1s", "timeout": "5s"},
        "state_dir": str(world.root / "exporter-state"),
        "backups": [
            # verify: none — integrity checks are their own scenario elsewhere; here the
            # pipeline, not the verifier, is under test.
            {
                "name": STALE_SET,
                "directory": str(world.backups / STALE_SET),
                "glob": "*.sql.gz",
                "max_age": "1h",
                "verify": "none",
            },
            {
                "name": JUMPED_SET,
                "directory": str(world.backups / JUMPED_SET),
                "glob": "*.sql.gz",
                "max_age": "26h",
                "verify": "none",
            },
        ],
        "tls": [
            {
                "name": CERT_TARGET,
                "path": str(certs / f"{demo_world.CERT_HOST}.pem"),
                "ca_file": str(certs / "demo-ca.pem"),
                "server_name": demo_world.CERT_HOST,
            }
        ],
        "databases": [
            {
                "name": DATABASE,
                "driver": "postgres",
                "dsn": f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{world.database}",
                "failed_jobs": True,
                "connections": False,
            }
        ],
    }
