"""Fault matrix, second half: faults the exporter absorbs by design, and flapping sources.

Same world as test_fault_matrix (every collector in one Runtime behind the real server).
An absorbed fault (a file deleted between listing and reading, a 10 MB log line, a log file
removed mid-tail) must leave every instance up, log no failure, and count exactly what was
written. A flapping source logs one line per outage and one per recovery, nothing more.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from tests.exporter._backups_helpers import mysqldump_text
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

TEN_MB = 10 * 1024 * 1024
FAILURE_EVENTS = {
    "collector_refresh_failed",
    "backup_verify_failed",
    "backup_verify_error",
    "log_state_unreadable",
}


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def laravel(level: str, message: str) -> str:
    return f"[2025-05-01 12:00:00] production.{level}: {message}\n"


def slow_entry(seconds: float, query: str) -> str:
    return (
        "# Time: 250501 12:00:03\n# User@Host: app[app] @ localhost []\n"
        f"# Query_time: {seconds:.6f}  Lock_time: 0.000000  Rows_sent: 1  Rows_examined: 0\n"
        f"SET timestamp=1746100803;\n{query};\n"
    )


async def sample(w: World, name: str, **labels: str) -> float | None:
    status, samples = await w.scrape()
    assert status == 200
    return value(samples, name, **labels)


async def all_up(w: World) -> bool:
    status, samples = await w.scrape()
    ups = [v for _, v in samples.get("maintwatch_collector_up", [])]
    return status == 200 and len(ups) == 10 and all(v == 1 for v in ups)


def no_failures(logs: Sequence[Mapping[str, Any]]) -> None:
    bad = [e for e in logs if e["event"] in FAILURE_EVENTS]
    assert not bad, bad


async def test_backups_newest_deleted_right_after_the_scan(
    databases: Databases, tmp_path: Path
) -> None:
    async with running_world(tmp_path, databases, ("backups", "db")) as w:
        await until(lambda: all_up(w), "every collector up")
        await until(lambda: sample(w, "maintwatch_backup_last_verify_success", backup="db"), "ok")
        day3 = w.path("backups", "tongacp_db_2025-05-03.sql.gz").stat().st_size
        with capture_logs() as logs:
            newest = w.path("backups", "tongacp_db_2025-05-04.sql.gz")
            w.backups.victim = newest  # deleted by the next scan that lists it, before its check
            newest.write_bytes(gzip.compress(mysqldump_text(900)))
            await until(lambda: w.backups.victim is None, "the scan that raced the deletion")
            await until(lambda: not newest.exists(), "victim deleted")
            # The next refreshes see the set without it; the check of the vanished file is dropped.
            await until(
                lambda: _backups_settled(w, day3), "set back to three files, day 3 newest, verified"
            )
            assert await all_up(w)
        no_failures(logs)


async def _backups_settled(w: World, size: int) -> bool:
    _, s = await w.scrape()
    return (
        value(s, "maintwatch_backup_files", backup="db") == 3
        and value(s, "maintwatch_backup_last_size_bytes", backup="db") == size
        and value(s, "maintwatch_backup_last_verify_success", backup="db") == 1
    )


async def test_apps_ten_megabyte_line_and_log_removed_mid_tail(
    databases: Databases, tmp_path: Path
) -> None:
    async with running_world(tmp_path, databases, ("apps", "portal")) as w:
        await until(lambda: all_up(w), "every collector up")
        log = w.path("app/storage/logs/laravel.log")
        counted = ("maintwatch_log_messages_total",)
        with capture_logs() as logs:
            huge = laravel("WARNING", "upload " + "x" * TEN_MB)
            append(log, laravel("ERROR", "one") + huge + laravel("INFO", "after the huge one"))
            await until(lambda: _level(w, "info", 1), "lines after a 10 MB line are counted")
            assert await sample(w, *counted, app="portal", level="warning") == 1
            assert await sample(w, *counted, app="portal", level="error") == 1
            # Written, then the file is removed before the next poll: its last line still counts
            # (read from the open handle), and the new file at the path is followed from byte 0.
            append(log, laravel("ERROR", "two"))
            log.unlink()
            log.write_text(laravel("ERROR", "three") + laravel("ERROR", "four"))
            await until(lambda: _level(w, "error", 4), "every error line counted once")
            assert await all_up(w)
        no_failures(logs)


async def _level(w: World, level: str, count: int) -> bool:
    got = await sample(w, "maintwatch_log_messages_total", app="portal", level=level)
    return got == count


async def test_slowlog_ten_megabyte_query_and_log_removed_mid_tail(
    databases: Databases, tmp_path: Path
) -> None:
    async with running_world(tmp_path, databases, ("slowlog", "my")) as w:
        await until(lambda: all_up(w), "every collector up")
        log = w.path("mysql/slow.log")
        with capture_logs() as logs:
            query = "SELECT '" + "y" * TEN_MB + "'"
            append(log, slow_entry(2.5, query) + slow_entry(0.2, "SELECT 1"))
            await until(lambda: _slow(w, 2), "both entries counted, the huge one included")
            append(log, slow_entry(1.0, "SELECT 2"))
            log.unlink()
            log.write_text(slow_entry(3.0, "SELECT 3"))
            await until(lambda: _slow(w, 4), "entries before and after the removal counted")
            assert await all_up(w)
        no_failures(logs)
        count = await sample(w, "maintwatch_db_slow_query_duration_seconds_count", database="my")
        assert count == 4


async def _slow(w: World, count: int) -> bool:
    got = await sample(w, "maintwatch_db_slow_queries_total", database="my")
    return got == count


async def _flap(w: World, proxy: str, key: Key, times: int) -> Sequence[Mapping[str, Any]]:
    state = w.state(key)
    with capture_logs() as logs:
        for _ in range(times):
            wanted = state.errors + 2
            await w.proxies[proxy].set("down")
            await until(lambda: state.errors >= wanted, "two failed refreshes")  # noqa: B023 -- awaited in this iteration
            await w.proxies[proxy].set("pass")
            await until(lambda: state.up, "recovered")
        await until(lambda: all_up(w), "every collector up after flapping")
    return logs


async def test_flapping_sources_log_each_outage_once(databases: Databases, tmp_path: Path) -> None:
    async with running_world(tmp_path, databases, ("redis", "queues")) as w:
        await until(lambda: all_up(w), "every collector up")
        for proxy, key in (
            ("redis", ("redis", "queues")),
            ("pg", ("databases", "pg")),
            ("supervisor", ("supervisor", "workers")),
        ):
            logs = await _flap(w, proxy, key, times=3)
            failed = [_who(e) for e in logs if e["event"].endswith("_failed")]
            back = [_who(e) for e in logs if e["event"] == "collector_recovered"]
            assert failed == [key] * 3, logs
            assert back == [key] * 3, logs


def _who(event: Mapping[str, Any]) -> tuple[Any, Any]:
    return event.get("collector"), event.get("name")
