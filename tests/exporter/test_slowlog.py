"""The slowlog collector on real files in MariaDB/MySQL slow query log format."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from exporter.collectors.base import Context
from exporter.collectors.registry import load_config_text
from exporter.collectors.slowlog import SlowlogCollector, SlowlogConfig
from exporter.logparse import SlowLogParser
from exporter.runtime import Runtime
from maintwatch.configload import ConfigError
from tests.exporter.conftest import promtool_check, refresh

MakeSlowlog = Callable[..., SlowlogCollector]

# What mariadbd 10.11 writes when the slow log is opened (server start, FLUSH SLOW LOGS).
BANNER = (
    "/usr/sbin/mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:\n"
    "Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock\n"
    "Time\t\t    Id Command\tArgument\n"
)
MARIADB_ENTRIES = """# Time: 250501 12:00:03
# User@Host: tongacp[tongacp] @ localhost []
# Thread_id: 31  Schema: tongacp  QC_hit: No
# Query_time: 2.000421  Lock_time: 0.000000  Rows_sent: 1  Rows_examined: 0
# Rows_affected: 0  Bytes_sent: 65
use tongacp;
SET timestamp=1746100803;
SELECT SLEEP(2);
# User@Host: tongacp[tongacp] @ localhost [127.0.0.1]
# Thread_id: 32  Schema: tongacp  QC_hit: No
# Query_time: 0.750012  Lock_time: 0.000051  Rows_sent: 120  Rows_examined: 250000
# Rows_affected: 0  Bytes_sent: 9876
# Full_scan: Yes  Full_join: No  Tmp_table: No  Tmp_table_on_disk: No
# Filesort: Yes  Filesort_on_disk: No  Merge_passes: 0  Priority_queue: No
SET timestamp=1746100804;
SELECT *
FROM jobs
# Query_time: 99.0 a comment inside the statement, not an entry header
WHERE reserved_at IS NULL
ORDER BY id;
# Time: 250501 12:05:00
# User@Host: root[root] @ localhost []
# Thread_id: 40  Schema:   QC_hit: No
# Query_time: 45.123456  Lock_time: 0.000010  Rows_sent: 0  Rows_examined: 0
# Rows_affected: 0  Bytes_sent: 11
SET timestamp=1746101100;
OPTIMIZE TABLE sessions;
"""
MYSQL8_ENTRY = """# Time: 2025-05-01T12:10:00.123456Z
# User@Host: shop[shop] @  [10.0.0.5]  Id:    42
# Query_time: 1.500000  Lock_time: 0.000002 Rows_sent: 10  Rows_examined: 100000
SET timestamp=1746101400;
SELECT * FROM orders WHERE status = 'pending';
"""


def entry(seconds: float, thread: int = 50) -> str:
    """Return one MariaDB slow log entry that took `seconds`."""
    return (
        f"# User@Host: app[app] @ localhost []\n"
        f"# Thread_id: {thread}  Schema: app  QC_hit: No\n"
        f"# Query_time: {seconds:.6f}  Lock_time: 0.000000  Rows_sent: 0  Rows_examined: 0\n"
        f"# Rows_affected: 0  Bytes_sent: 11\n"
        f"SET timestamp=1746101100;\nSELECT SLEEP({seconds});\n"
    )


@pytest.fixture
async def make_slowlog(tmp_path: Path, context: Context) -> AsyncIterator[MakeSlowlog]:
    made: list[SlowlogCollector] = []

    def make(**fields: Any) -> SlowlogCollector:
        fields.setdefault("path", str(tmp_path / "mysql-slow.log"))
        collector = SlowlogCollector(SlowlogConfig(name="tongacp", **fields), context)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.close()


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def buckets(samples: Any) -> dict[str, float]:
    rows = samples.all("maintwatch_db_slow_query_duration_seconds_bucket")
    return {labels["le"]: value for labels, value in rows}


async def test_counts_and_histogram_from_a_real_format_log(
    tmp_path: Path, make_slowlog: MakeSlowlog
) -> None:
    log = tmp_path / "mysql-slow.log"
    log.write_text(BANNER + MARIADB_ENTRIES + MYSQL8_ENTRY)
    samples = await refresh(make_slowlog(from_beginning=True))
    assert samples.get("maintwatch_db_slow_queries_total", database="tongacp") == 4
    assert buckets(samples) == {
        "0.1": 0,
        "0.5": 0,
        "1.0": 1,
        "2.0": 2,
        "5.0": 3,
        "10.0": 3,
        "30.0": 3,
        "60.0": 4,
        "+Inf": 4,
    }
    assert samples.get("maintwatch_db_slow_query_duration_seconds_count") == 4
    total = samples.get("maintwatch_db_slow_query_duration_seconds_sum")
    assert total == pytest.approx(2.000421 + 0.750012 + 45.123456 + 1.5)


async def test_history_is_skipped_then_new_entries_count(
    tmp_path: Path, make_slowlog: MakeSlowlog
) -> None:
    log = tmp_path / "mysql-slow.log"
    log.write_text(BANNER + MARIADB_ENTRIES)
    collector = make_slowlog()
    assert (await refresh(collector)).get("maintwatch_db_slow_queries_total") == 0
    append(log, entry(3.0))
    samples = await refresh(collector)
    assert samples.get("maintwatch_db_slow_queries_total") == 1
    assert buckets(samples)["5.0"] == 1
    assert buckets(samples)["2.0"] == 0


async def test_entry_split_across_refreshes(tmp_path: Path, make_slowlog: MakeSlowlog) -> None:
    log = tmp_path / "mysql-slow.log"
    log.write_text(BANNER)
    collector = make_slowlog()
    await refresh(collector)
    text = entry(1.25)
    cut = text.index("Query_time: 1.2") + len("Query_time: 1.2")
    append(log, text[:cut])
    assert (await refresh(collector)).get("maintwatch_db_slow_queries_total") == 0
    append(log, text[cut:])
    samples = await refresh(collector)
    assert samples.get("maintwatch_db_slow_queries_total") == 1
    assert samples.get("maintwatch_db_slow_query_duration_seconds_sum") == 1.25


async def test_rename_rotation_then_flush(tmp_path: Path, make_slowlog: MakeSlowlog) -> None:
    log = tmp_path / "mysql-slow.log"
    log.write_text(BANNER)
    collector = make_slowlog()
    await refresh(collector)
    append(log, entry(1.5))
    log.rename(tmp_path / "mysql-slow.log.1")  # logrotate renames…
    append(tmp_path / "mysql-slow.log.1", entry(2.5))  # …the server writes on until the flush…
    log.write_text(BANNER + entry(7.0))  # …then FLUSH SLOW LOGS opens a new file
    samples = await refresh(collector)
    assert samples.get("maintwatch_db_slow_queries_total") == 3
    for _ in range(3):
        samples = await refresh(collector)
    assert samples.get("maintwatch_db_slow_queries_total") == 3


async def test_copytruncate(tmp_path: Path, make_slowlog: MakeSlowlog) -> None:
    log = tmp_path / "mysql-slow.log"
    log.write_text(BANNER + MARIADB_ENTRIES)
    collector = make_slowlog()
    await refresh(collector)
    append(log, entry(1.5))
    assert (await refresh(collector)).get("maintwatch_db_slow_queries_total") == 1
    with log.open("r+") as handle:
        handle.truncate(0)
    append(log, entry(0.2))
    samples = await refresh(collector)
    assert samples.get("maintwatch_db_slow_queries_total") == 2
    assert buckets(samples)["0.5"] == 1


async def test_huge_query_text_is_bounded(tmp_path: Path, make_slowlog: MakeSlowlog) -> None:
    log = tmp_path / "mysql-slow.log"
    log.write_text("")
    collector = make_slowlog(max_line_bytes=4096)
    await refresh(collector)
    huge = entry(4.0).replace("SELECT SLEEP(4.0)", "INSERT INTO t VALUES " + "(1)," * 2_700_000)
    append(log, huge + entry(0.3))
    samples = await refresh(collector)
    assert samples.get("maintwatch_db_slow_queries_total") == 2


async def test_promtool_accepts_the_output(
    tmp_path: Path, make_slowlog: MakeSlowlog, promtool: str
) -> None:
    (tmp_path / "mysql-slow.log").write_text(BANNER + MARIADB_ENTRIES)
    promtool_check(promtool, (await refresh(make_slowlog(from_beginning=True))).text())


async def test_runtime_marks_down_when_log_directory_is_missing(
    tmp_path: Path, context: Context
) -> None:
    config = SlowlogConfig(name="tongacp", path=str(tmp_path / "mysql" / "slow.log"))
    rt = Runtime(structlog.get_logger("test"))
    try:
        with capture_logs() as logs:
            await rt.apply([(SlowlogCollector(config, context), 0.05, 5.0)])
            async with asyncio.timeout(10):
                await rt.wait_ready()
        (state,) = rt.states()
        assert not state.up
        assert state.last_error == f"log directory {tmp_path / 'mysql'} does not exist"
        assert [e["event"] for e in logs] == ["collector_refresh_failed"]
        assert "maintwatch_db_slow_queries" not in {f.name for f in rt.families()}
        (tmp_path / "mysql").mkdir()
        async with asyncio.timeout(10):
            while not rt.states()[0].up:
                await asyncio.sleep(0.02)
        assert "maintwatch_db_slow_queries" in {f.name for f in rt.families()}
    finally:
        await rt.close()


def test_parser_counts_header_query_time_only() -> None:
    parser = SlowLogParser()
    text = BANNER + MARIADB_ENTRIES + MYSQL8_ENTRY + "# Query_time: 5.0  stray\n"
    found = [d for d in map(parser.feed, text.splitlines()) if d is not None]
    assert found == [2.000421, 0.750012, 45.123456, 1.5]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            "slowlog: [{name: db, path: mysql-slow.log}]",
            "x.yml: slowlog[0].path: must be an absolute path, got 'mysql-slow.log'",
        ),
        (
            "slowlog: [{name: db, path: /var/log/mysql/slow.log, buckets: [1, 0.5]}]",
            "x.yml: slowlog[0].buckets: bucket bounds must be strictly increasing",
        ),
        (
            "slowlog: [{name: db, path: /var/log/mysql/slow.log, buckets: [0, 1]}]",
            "x.yml: slowlog[0].buckets: bucket bounds must be positive and finite "
            "(+Inf is implicit)",
        ),
        ("slowlog: [{name: db}]", "x.yml: slowlog[0].path: required field is missing"),
        (
            "slowlog: [{name: db, path: '/var/log/*/../x.log'}]",
            "x.yml: slowlog[0].path: '..' after a wildcard would leave the glob's directory: "
            "'/var/log/*/../x.log'",
        ),
        (
            "slowlog: [{name: db, path: /s.log, long_query_time: 1}]",
            "x.yml: slowlog[0].long_query_time: unknown field",
        ),
    ],
)
def test_config_errors(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(section, "x.yml")
    assert caught.value.problems == [message]
