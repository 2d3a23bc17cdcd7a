"""The fault matrix: every source down, silent, answering garbage or holding wrong data,
with ALL collectors running together in one Runtime behind the real HTTP server.

Each cell injects one fault into one source and checks, through real scrapes:
what happens (the instance goes down, or degrades as designed), what is reported (one log
line, however many refreshes fail), that every other instance and the scrape are unaffected,
and that the instance recovers by itself once the fault is removed.
docs/reliability.md has this table in prose.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from structlog.testing import capture_logs

from tests.exporter._db_helpers import my_admin, pg_admin
from tests.exporter._fault_helpers import Mode
from tests.exporter._matrix_helpers import (
    Databases,
    Key,
    World,
    databases,
    running_world,
    until,
    value,
)

__all__ = ["databases"]  # the module-scoped fixture, re-exported so pytest finds it here

Action = Callable[[World], Awaitable[None]]
Expect = Literal["down", "degraded", "absorbed"]


@dataclass(frozen=True)
class Cell:
    """One (source, fault) pair and what must follow from it."""

    target: Key
    fault: str
    expect: Expect
    inject: Action
    restore: Action
    reason: str = ""  # substring of the one log line (down: the runtime's; degraded: event)
    event: str = "collector_refresh_failed"

    @property
    def id(self) -> str:
        return f"{self.target[0]}:{self.target[1]}-{self.fault}"


def proxy(name: str, mode: Mode) -> tuple[Action, Action]:
    """Return (inject, restore) that switch one source's proxy to `mode` and back."""

    async def inject(w: World) -> None:
        await w.proxies[name].set(mode)

    async def restore(w: World) -> None:
        await w.proxies[name].set("pass")

    return inject, restore


def sql(driver: str, w: World, statement: str) -> None:
    """Run DDL as the database's admin (the fault is a schema change)."""
    if driver == "pg":
        with pg_admin(w.dbs.pg) as conn:
            conn.execute(statement.encode())  # fixed test DDL
        return
    admin = my_admin(w.dbs.my)
    try:
        with admin.cursor() as cur:
            cur.execute(statement)
    finally:
        admin.close()


def rename_column(driver: str, old: str, new: str) -> Action:
    async def act(w: World) -> None:
        q = '"' if driver == "pg" else "`"
        sql(driver, w, f"ALTER TABLE failed_jobs RENAME COLUMN {q}{old}{q} TO {q}{new}{q}")

    return act


def write(path: str, data: bytes) -> Action:
    async def act(w: World) -> None:
        w.path(path).write_bytes(data)

    return act


async def dir_to_file(w: World) -> None:
    w.path("backups").rename(w.path("backups.moved"))
    w.path("backups").write_text("not a directory\n")


async def file_to_dir(w: World) -> None:
    w.path("backups").unlink()
    w.path("backups.moved").rename(w.path("backups"))


async def wrong_type(w: World) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.delete(f"{w.prefix}queues:default")
        client.set(f"{w.prefix}queues:default", "a string where a list belongs")
    finally:
        client.close()


async def right_type(w: World) -> None:
    import redis

    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.delete(f"{w.prefix}queues:default")
        client.rpush(f"{w.prefix}queues:default", '{"job":"x"}')
    finally:
        client.close()


async def noop(w: World) -> None:
    return None


def net(name: str, key: Key, expect: Expect, reasons: dict[str, str], event: str) -> list[Cell]:
    """Cells for a network source: down (refused), slow (silent), garbage answers."""
    cells = []
    for fault, mode in (("down", "down"), ("slow", "blackhole"), ("garbage", "garbage")):
        inject, restore = proxy(name, mode)  # type: ignore[arg-type]
        cells.append(Cell(key, fault, expect, inject, restore, reasons[fault], event))
    return cells


PEM_GARBAGE = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"

CELLS: list[Cell] = [
    *net("redis", ("redis", "queues"), "down",
         {"down": "Error 111 connecting", "slow": "timed out", "garbage": "redis"},
         "collector_refresh_failed"),
    *net("pg", ("databases", "pg"), "down",
         {"down": "cannot connect to postgres", "slow": "timed out", "garbage": "postgres"},
         "collector_refresh_failed"),
    *net("my", ("databases", "my"), "down",
         {"down": "cannot connect to mysql", "slow": "timed out", "garbage": "mysql"},
         "collector_refresh_failed"),
    *net("supervisor", ("supervisor", "workers"), "down",
         {"down": "cannot reach supervisord", "slow": "timed out", "garbage": "supervisord"},
         "collector_refresh_failed"),
    *net("tls", ("tls", "endpoint"), "degraded",
         {"down": "", "slow": "no TLS handshake", "garbage": ""}, "tls_probe_failed"),
    *net("http", ("http", "health"), "degraded",
         {"down": "", "slow": "no complete answer", "garbage": ""}, "http_probe_failed"),
    Cell(("redis", "queues"), "wrong-key-type", "degraded", wrong_type, right_type,
         "WRONGTYPE", "queue_skipped"),
    Cell(("databases", "pg"), "failed_jobs-missing-column", "down",
         rename_column("pg", "queue", "queue_name"), rename_column("pg", "queue_name", "queue"),
         "failed_jobs: "),
    Cell(("databases", "my"), "failed_jobs-missing-column", "down",
         rename_column("my", "queue", "queue_name"), rename_column("my", "queue_name", "queue"),
         "failed_jobs: "),
    Cell(("tls", "file"), "not-pem", "degraded",
         write("certs/site.pem", b"this is not PEM at all\n"), noop, "", "tls_probe_failed"),
    Cell(("tls", "file"), "pem-armour-garbage-inside", "degraded",
         write("certs/site.pem", PEM_GARBAGE), noop, "", "tls_probe_failed"),
    Cell(("backups", "db"), "directory-replaced-by-file", "down", dir_to_file, file_to_dir,
         "is not a directory"),
    Cell(("apps", "portal"), "log-directory-removed", "down",
         lambda w: _move(w, "app/storage/logs", "app/logs.moved"),
         lambda w: _move(w, "app/logs.moved", "app/storage/logs"), "does not exist"),
    Cell(("apps", "portal"), "watched-directory-removed", "down",
         lambda w: _move(w, "app/public/uploads", "app/uploads.moved"),
         lambda w: _move(w, "app/uploads.moved", "app/public/uploads"), "does not exist"),
    Cell(("apps", "portal"), "maintenance-flag-is-a-directory", "down",
         lambda w: _mkdir(w, "app/storage/framework/down"),
         lambda w: _rmdir(w, "app/storage/framework/down"), "Is a directory"),
    Cell(("slowlog", "my"), "log-directory-removed", "down",
         lambda w: _move(w, "mysql", "mysql.moved"),
         lambda w: _move(w, "mysql.moved", "mysql"), "does not exist"),
]  # fmt: skip


async def _mkdir(w: World, path: str) -> None:
    w.path(path).mkdir()


async def _rmdir(w: World, path: str) -> None:
    w.path(path).rmdir()


async def _move(w: World, src: str, dst: str) -> None:
    w.path(src).rename(w.path(dst))


def _failures(logs: Sequence[Mapping[str, Any]], key: Key, event: str) -> list[Mapping[str, Any]]:
    return [e for e in logs if e["event"] == event and (e["collector"], e["name"]) == key]


async def _restore_cert(w: World) -> None:
    leaf = w.pki.leaf("localhost")
    w.pki.write("site.pem", leaf.pem(), w.pki.intermediate.pem())


def _degraded(cell: Cell, samples: dict[str, Any]) -> bool:
    name = cell.target[1]
    if cell.target[0] == "tls":
        return value(samples, "maintwatch_tls_probe_success", target=name) == 0
    if cell.target[0] == "http":
        return value(samples, "maintwatch_http_probe_success", target=name) == 0
    return value(samples, "maintwatch_queue_jobs", queue="default", state="pending") is None


async def _all_up(w: World) -> bool:
    status, samples = await w.scrape()
    ups = [v for _, v in samples.get("maintwatch_collector_up", [])]
    return status == 200 and len(ups) == 10 and all(v == 1 for v in ups)


async def _healthy(w: World, cell: Cell) -> bool:
    status, samples = await w.scrape()
    return status == 200 and not _degraded(cell, samples)


@pytest.mark.parametrize("cell", CELLS, ids=lambda c: c.id)
async def test_fault_cell(cell: Cell, databases: Databases, tmp_path: Path) -> None:
    async with running_world(tmp_path, databases, cell.target) as w:
        await until(lambda: _all_up(w), "every collector up before the fault")
        if cell.expect == "degraded":
            await until(lambda: _healthy(w, cell), "source healthy before the fault")
        state = w.state(cell.target)
        with capture_logs() as logs:
            await cell.inject(w)
            try:
                errors = state.errors
                if cell.expect == "down":
                    # Two failed refreshes at least: the outage is logged once, not per refresh.
                    await until(lambda: state.errors >= errors + 2, "two failed refreshes")
                status, samples = await w.scrape()
                if cell.expect == "degraded":
                    await until(lambda: _degraded_now(w, cell), "degraded signal")
                    status, samples = await w.scrape()
                assert status == 200
                ups = {(lb["collector"], lb["name"]): v
                       for lb, v in samples["maintwatch_collector_up"]}  # fmt: skip
                expected_up = 0 if cell.expect == "down" else 1
                assert ups.pop(cell.target) == expected_up
                assert set(ups.values()) == {1}, f"bystanders hurt: {ups}"
                during = len(_failures(logs, cell.target, cell.event))
                assert during == 1, logs
            finally:
                await cell.restore(w)
                if cell.target == ("tls", "file"):
                    await _restore_cert(w)
            await until(lambda: _all_up(w), "every collector up after the fault")
            if cell.expect == "degraded":
                await until(lambda: _healthy(w, cell), "source healthy after the fault")
        failures = _failures(logs, cell.target, cell.event)
        assert len(failures) == 1, failures
        assert cell.reason in str(failures[0].get("reason", "")), failures[0]
        others = [e for e in logs if e["event"] == "collector_refresh_failed"]
        assert all((e["collector"], e["name"]) == cell.target for e in others), others


async def _degraded_now(w: World, cell: Cell) -> bool:
    _, samples = await w.scrape()
    return _degraded(cell, samples)
