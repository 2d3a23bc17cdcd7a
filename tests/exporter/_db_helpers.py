"""Database test helpers: per-test databases with Laravel's tables, admin access, a TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pymysql
import pytest

from exporter.collectors.base import Context
from exporter.collectors.databases import DatabaseCollector, DatabaseConfig

PG: dict[str, Any] = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY: dict[str, Any] = {"host": "127.0.0.1", "port": 3306, "user": "root"}

# The SQL Laravel 11's `0001_01_01_000002_create_jobs_table` migration generates per grammar.
PG_SCHEMA = [
    'create table "jobs" ("id" bigserial not null primary key, "queue" varchar(255) not null,'
    ' "payload" text not null, "attempts" smallint not null, "reserved_at" integer null,'
    ' "available_at" integer not null, "created_at" integer not null)',
    'create index "jobs_queue_index" on "jobs" ("queue")',
    'create table "failed_jobs" ("id" bigserial not null primary key, "uuid" varchar(255) not null,'
    ' "connection" text not null, "queue" text not null, "payload" text not null,'
    ' "exception" text not null,'
    ' "failed_at" timestamp(0) without time zone not null default CURRENT_TIMESTAMP)',
    'alter table "failed_jobs" add constraint "failed_jobs_uuid_unique" unique ("uuid")',
]
MYSQL_SCHEMA = [
    "create table `jobs` (`id` bigint unsigned not null auto_increment primary key,"
    " `queue` varchar(255) not null, `payload` longtext not null,"
    " `attempts` tinyint unsigned not null, `reserved_at` int unsigned null,"
    " `available_at` int unsigned not null, `created_at` int unsigned not null)"
    " default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "alter table `jobs` add index `jobs_queue_index`(`queue`)",
    "create table `failed_jobs` (`id` bigint unsigned not null auto_increment primary key,"
    " `uuid` varchar(255) not null, `connection` text not null, `queue` text not null,"
    " `payload` longtext not null, `exception` longtext not null,"
    " `failed_at` timestamp not null default CURRENT_TIMESTAMP)"
    " default character set utf8mb4 collate 'utf8mb4_unicode_ci'",
    "alter table `failed_jobs` add unique `failed_jobs_uuid_unique`(`uuid`)",
]


def pg_admin(dbname: str = "postgres") -> psycopg.Connection[Any]:
    """Return an autocommit superuser connection."""
    return psycopg.connect(
        host=PG["host"], port=PG["port"], user=PG["user"], dbname=dbname, autocommit=True
    )


def my_admin(database: str | None = None) -> pymysql.connections.Connection[Any]:
    """Return an autocommit root connection to MariaDB."""
    return pymysql.connect(
        host=str(MY["host"]), port=int(MY["port"]), user=str(MY["user"]), database=database,
        autocommit=True,
    )  # fmt: skip


@pytest.fixture
def pg_db(unique: str) -> Iterator[str]:
    """Create a database with Laravel's queue tables; drop it (forcibly) afterwards."""
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{unique}"')
    try:
        with pg_admin(unique) as conn:
            for statement in PG_SCHEMA:
                conn.execute(statement.encode())  # fixed test DDL, not user input
        yield unique
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{unique}" WITH (FORCE)')


@pytest.fixture
def my_db(unique: str) -> Iterator[str]:
    """Create a MariaDB database with Laravel's queue tables; drop it afterwards."""
    admin = my_admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{unique}`")
            cur.execute(f"USE `{unique}`")
            for statement in MYSQL_SCHEMA:
                cur.execute(statement)
    finally:
        admin.close()  # not held open: tests count the sessions on this database
    try:
        yield unique
    finally:
        admin = my_admin()
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{unique}`")
        finally:
            admin.close()


def payload(job_class: str) -> str:
    """Return a Laravel queue payload for a job class, JSON-encoded the way PHP does it."""
    body = {
        "uuid": str(uuid.uuid4()),
        "displayName": job_class,
        "job": "Illuminate\\Queue\\CallQueuedHandler@call",
        "maxTries": None,
        "data": {"commandName": job_class, "command": "O:8:..."},
    }
    return json.dumps(body, separators=(",", ":")).replace("/", "\\/")


def failed_job_row(queue: str, job_class: str, failed_at: str) -> tuple[str, ...]:
    """Return values for (uuid, connection, queue, payload, exception, failed_at)."""
    trace = "RuntimeException: boom in /app/Jobs/X.php:12"
    return (str(uuid.uuid4()), "database", queue, payload(job_class), trace, failed_at)


def collector(
    context: Context, driver: str, dsn: str, clock: Callable[[], float] = time.time, **fields: Any
) -> DatabaseCollector:
    """Build a databases collector from config fields."""
    config = DatabaseConfig.model_validate(
        {"name": "app", "driver": driver, "dsn": dsn, "statement_timeout": "2s", **fields}
    )
    return DatabaseCollector(config, context, clock)


class TcpProxy:
    """Forward a local port to a server; `stop()` drops every connection, `start()` resumes."""

    def __init__(self, port: int, upstream: tuple[str, int]) -> None:
        self.port = port
        self.upstream = upstream
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on the port (again)."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stop listening and cut every forwarded connection, like a server going away."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in list(self._writers):
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            dst.close()


@contextlib.asynccontextmanager
async def proxy(port: int, upstream: tuple[str, int]) -> AsyncIterator[TcpProxy]:
    """Run a TcpProxy for the duration of the block."""
    p = TcpProxy(port, upstream)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def poll(check: Callable[[], Any], deadline: float = 10.0, step: float = 0.05) -> Any:
    """Return check()'s first truthy value, polling until `deadline` seconds pass."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        await asyncio.sleep(step)
