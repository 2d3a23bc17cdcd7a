"""Factories for backup-set tests: real files with chosen ages, collectors, polling helpers."""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from exporter.collectors.backups.collector import BackupsCollector
from exporter.collectors.backups.config import BackupSetConfig
from exporter.collectors.base import Context
from tests.exporter.conftest import Samples, refresh

T = TypeVar("T")
HOUR = 3600.0

MYSQLDUMP_HEAD = (
    "-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n"
    "--\n-- Host: localhost    Database: tongacp\n"
    "-- ------------------------------------------------------\n"
)
MYSQLDUMP_TRAILER = "\n-- Dump completed on 2025-05-01 12:00:00\n"


def sql_body(rows: int, seed: int = 1) -> str:
    """Return INSERT statements with varied, compressible-but-not-trivial content."""
    rnd = random.Random(seed)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"]
    lines = [
        # Why S608 is ignored: dump file content for tests, never run against a database.
        f"INSERT INTO `users` VALUES ({i},'{rnd.choice(words)}{rnd.randrange(10**6)}',"  # noqa: S608
        f"'{rnd.choice(words)}@example.org',{rnd.random():.6f});"
        for i in range(rows)
    ]
    return "\n".join(lines)


def mysqldump_text(rows: int = 2000, trailer: bool = True) -> bytes:
    """Return a mysqldump/mariadb-dump style dump, with or without its completion line."""
    text = MYSQLDUMP_HEAD + sql_body(rows) + (MYSQLDUMP_TRAILER if trailer else "\n")
    return text.encode()


def write(path: Path, data: bytes, age: float = HOUR) -> Path:
    """Write `data` to `path` and set its mtime `age` seconds in the past (settled)."""
    path.write_bytes(data)
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def write_gzip(path: Path, data: bytes, age: float = HOUR) -> Path:
    """Write `data` gzip-compressed."""
    return write(path, gzip.compress(data, compresslevel=6), age)


def flip_bit(path: Path, at: float = 0.5) -> None:
    """Flip one bit at a relative position of the file, keeping its mtime."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x10
    path.write_bytes(bytes(data))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def truncate(path: Path, keep: float = 0.6) -> None:
    """Cut the file to a fraction of its size, keeping its mtime."""
    info = path.stat()
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


def make_collector(context: Context, **fields: Any) -> BackupsCollector:
    """Build a collector from config fields (name defaults to `db`)."""
    fields.setdefault("name", "db")
    return BackupsCollector(BackupSetConfig.model_validate(fields), context)


async def until(
    probe: Callable[[], Awaitable[T | None]], timeout: float = 30.0, every: float = 0.02
) -> T:
    """Poll `probe` until it returns something not None; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(every)


async def verified(collector: BackupsCollector) -> tuple[Samples, float]:
    """Refresh until the set exports a verify result; return the samples and the result."""

    async def probe() -> tuple[Samples, float] | None:
        samples = await refresh(collector)
        value = samples.get("maintwatch_backup_last_verify_success", backup=collector.name)
        return None if value is None else (samples, value)

    return await until(probe)


async def verify_of(context: Context, path: Path, **fields: Any) -> float:
    """Return the verify gauge for a set holding just `path` (its directory and exact name)."""
    collector = make_collector(context, directory=str(path.parent), glob=path.name, **fields)
    try:
        _, value = await verified(collector)
        return value
    finally:
        await collector.close()
