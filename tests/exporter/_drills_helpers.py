"""Restore-drill test helpers: real source databases, real dumps, drills, scratch cleanup."""

from __future__ import annotations

import gzip
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exporter.drills import Drill, DrillResult, DrillStore, RestoreConfig, Target
from tests.conftest import require_tool
from tests.exporter._db_helpers import my_admin, pg_admin

USERS = 120
ORDERS = 30


def my_exec(statements: list[str], database: str | None = None) -> None:
    """Run statements as MariaDB root."""
    conn = my_admin(database)
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def my_users(database: str, ids: range) -> None:
    """Insert users with the given ids."""
    conn = my_admin(database)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO users VALUES (%s, %s, %s)",
                [(i, f"user{i}", f"user{i}@example.org") for i in ids],
            )
    finally:
        conn.close()


def my_fill(database: str, users: int = USERS, orders: int = ORDERS) -> None:
    """Create `users` and `orders` tables with rows in a MariaDB database."""
    my_exec(
        [
            "CREATE TABLE users (id INT PRIMARY KEY, name VARCHAR(64), email VARCHAR(128))",
            "CREATE TABLE orders (id INT PRIMARY KEY, user_id INT, total DECIMAL(10,2))",
        ],
        database,
    )
    my_users(database, range(users))
    conn = my_admin(database)
    try:
        with conn.cursor() as cur:
            rows = [(i, i % users, i + 0.5) for i in range(orders)]
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s)", rows)
    finally:
        conn.close()


def pg_fill(database: str, users: int = USERS, orders: int = ORDERS) -> None:
    """Create `users` and `orders` tables with rows in a PostgreSQL database."""
    with pg_admin(database) as conn:
        conn.execute("CREATE TABLE users (id int PRIMARY KEY, name text, email text)")
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, user_id int, total numeric)")
        conn.execute(
            "INSERT INTO users SELECT i, 'user' || i, 'user' || i || '@example.org'"
            " FROM generate_series(0, %s - 1) i",
            (users,),
        )
        conn.execute(
            "INSERT INTO orders SELECT i, i %% %s, i + 0.5 FROM generate_series(0, %s - 1) i",
            (users, orders),
        )


@pytest.fixture
def my_source(unique: str) -> Iterator[str]:
    """Create a live MariaDB database with users and orders; drop it afterwards."""
    name = f"{unique}_live"
    my_exec([f"CREATE DATABASE `{name}`"])
    try:
        my_fill(name)
        yield name
    finally:
        my_exec([f"DROP DATABASE IF EXISTS `{name}`"])


@pytest.fixture
def pg_source(unique: str) -> Iterator[str]:
    """Create a live PostgreSQL database with users and orders; drop it afterwards."""
    name = f"{unique}_live"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        pg_fill(name)
        yield name
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def my_scratch(unique: str) -> Iterator[str]:
    """Return a scratch database name; drop whatever is left of it afterwards."""
    name = f"{unique}_drill"
    yield name
    my_exec([f"DROP DATABASE IF EXISTS `{name}`"])


@pytest.fixture
def pg_scratch(unique: str) -> Iterator[str]:
    """Return a scratch database name; drop whatever is left of it afterwards."""
    name = f"{unique}_drill"
    yield name
    with pg_admin() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def my_databases() -> set[str]:
    """Return the databases on the MariaDB server."""
    conn = my_admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def pg_databases() -> set[str]:
    """Return the databases on the PostgreSQL server."""
    with pg_admin() as conn:
        return {row[0] for row in conn.execute("SELECT datname FROM pg_database").fetchall()}


def mariadb_dump(database: str, path: Path, compress: bool = False) -> Path:
    """Dump a database with the real `mariadb-dump`, gzip'd like seed 000 when asked."""
    tool = require_tool("mariadb-dump")
    argv = [tool, "--host=127.0.0.1", "--port=3306", "--user=root", "--single-transaction"]
    data = subprocess.run([*argv, database], check=True, capture_output=True).stdout
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def pg_dump(database: str, path: Path, fmt: str = "plain", compress: bool = False) -> Path:
    """Dump a database with the real `pg_dump` (plain or custom format)."""
    tool = require_tool("pg_dump")
    argv = [tool, "--host=127.0.0.1", "--port=5432", "--username=postgres", f"--format={fmt}"]
    data = subprocess.run([*argv, database], check=True, capture_output=True).stdout
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def restore_config(**fields: Any) -> RestoreConfig:
    """Validate a `restore:` section."""
    return RestoreConfig.model_validate(fields)


def my_config(scratch: str, live: str | None = None, **fields: Any) -> RestoreConfig:
    """Return a MariaDB drill config into `scratch` on the local server."""
    base: dict[str, Any] = {
        "engine": "mariadb",
        "scratch": {"dsn": f"mysql://root@127.0.0.1:3306/{scratch}"},
        "tables": {"users": 100, "orders": 1},
    }
    if live is not None:
        base["live"] = {"dsn": f"mysql://root@127.0.0.1:3306/{live}"}
    return restore_config(**{**base, **fields})


def pg_config(scratch: str, live: str | None = None, **fields: Any) -> RestoreConfig:
    """Return a PostgreSQL drill config into `scratch` on the local server."""
    base: dict[str, Any] = {
        "engine": "postgres",
        "scratch": {"dsn": f"postgresql://postgres@127.0.0.1:5432/{scratch}"},
        "tables": {"users": 100, "orders": 1},
    }
    if live is not None:
        base["live"] = {"dsn": f"postgresql://postgres@127.0.0.1:5432/{live}"}
    return restore_config(**{**base, **fields})


def drill(config: RestoreConfig, state_dir: Path, live: frozenset[str] = frozenset()) -> Drill:
    """Return a drill of set `db` recording into `state_dir`."""
    return Drill("db", config, DrillStore(str(state_dir), "db", time.time()), live)


def run(d: Drill, path: Path | None, cancel: threading.Event | None = None) -> DrillResult:
    """Run a drill on `path` (unchecked by the integrity checker)."""
    return d.run(Target(str(path) if path else None), cancel or threading.Event())


def truncate_at(path: Path, marker: bytes) -> None:
    """Cut a file in the middle of the first line holding `marker`."""
    data = path.read_bytes()
    at = data.index(marker) + len(marker) // 2
    path.write_bytes(data[:at])
