"""The backups collector on real directories: metrics, integrity results, caching, settling."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from exporter.collectors.backups.collector import BackupsCollector
from exporter.collectors.base import Context
from tests.exporter._backups_helpers import (
    HOUR,
    flip_bit,
    make_collector,
    mysqldump_text,
    truncate,
    until,
    verified,
    verify_of,
    write,
    write_gzip,
)
from tests.exporter.conftest import promtool_check, refresh

NAME = "tongacp_db_%Y%m%d%H%M%S.sql.gz"


def stamp(day: int, hour: int = 12) -> tuple[str, float]:
    when = datetime(2025, 5, day, hour, tzinfo=UTC)
    return when.strftime(NAME), when.timestamp()


@pytest.fixture
async def collectors(context: Context) -> AsyncIterator[Callable[..., BackupsCollector]]:
    made: list[BackupsCollector] = []

    def factory(**fields: Any) -> BackupsCollector:
        collector = make_collector(context, **fields)
        made.append(collector)
        return collector

    yield factory
    for collector in made:
        await collector.close()


async def test_set_metrics_and_promtool(
    tmp_path: Path, collectors: Callable[..., BackupsCollector], promtool: str
) -> None:
    sizes = {}
    for day in (1, 2, 3):
        name, _ = stamp(day)
        # mtimes deliberately disagree with the names: the name wins.
        path = write_gzip(tmp_path / name, mysqldump_text(500 * day), age=10 * HOUR - day)
        sizes[day] = path.stat().st_size
    write(tmp_path / "README.txt", b"not a backup")
    (tmp_path / "tongacp_db_dir.sql.gz").mkdir()  # matches the glob but is no file
    collector = collectors(
        name="tongacp_db",
        directory=str(tmp_path),
        timestamp=NAME,
        timezone="UTC",
        retention="30d",
        max_age="26h",
    )
    samples, verify = await verified(collector)
    get = samples.get
    assert get("maintwatch_backup_files") == 3
    assert get("maintwatch_backup_size_bytes") == sum(sizes.values())
    assert get("maintwatch_backup_last_timestamp_seconds") == stamp(3)[1]
    assert get("maintwatch_backup_oldest_timestamp_seconds") == stamp(1)[1]
    assert get("maintwatch_backup_last_size_bytes") == sizes[3]
    assert get("maintwatch_backup_previous_size_bytes") == sizes[2]
    assert get("maintwatch_backup_max_age_seconds") == 26 * HOUR
    assert get("maintwatch_backup_retention_seconds") == 30 * 86400
    assert verify == 1
    checked = get("maintwatch_backup_last_verify_timestamp_seconds")
    assert checked is not None
    assert abs(checked - time.time()) < HOUR
    assert (get("maintwatch_backup_volume_size_bytes") or 0) > 0
    assert (get("maintwatch_backup_volume_free_bytes") or 0) > 0
    # One label on every data series, the set name: never a path.
    assert all(
        labels == {"backup": "tongacp_db"}
        for family in samples.families
        for labels in (s.labels for s in family.samples)
    )
    promtool_check(promtool, samples.text())


async def test_empty_set_keeps_its_series(
    tmp_path: Path, collectors: Callable[..., BackupsCollector], promtool: str
) -> None:
    write(tmp_path / "other.tar", b"x")
    samples = await refresh(collectors(directory=str(tmp_path), glob="*.sql.gz"))
    assert samples.get("maintwatch_backup_files", backup="db") == 0
    assert samples.get("maintwatch_backup_size_bytes", backup="db") == 0
    for absent in (
        "maintwatch_backup_last_timestamp_seconds",
        "maintwatch_backup_last_verify_success",
        "maintwatch_backup_previous_size_bytes",
    ):
        assert samples.all(absent) == []
    assert samples.get("maintwatch_backup_max_age_seconds") == 26 * HOUR
    assert samples.all("maintwatch_backup_retention_seconds") == []
    promtool_check(promtool, samples.text())


async def test_mtime_is_the_time_when_names_hold_none(
    tmp_path: Path, collectors: Callable[..., BackupsCollector]
) -> None:
    old = write(tmp_path / "a.sql", mysqldump_text(10), age=5 * HOUR)
    new = write(tmp_path / "b.sql", mysqldump_text(10), age=2 * HOUR)
    # A name the pattern does not match falls back to mtime too.
    collector = collectors(directory=str(tmp_path), glob="*.sql", timestamp="db_%Y%m%d.sql")
    samples = await refresh(collector)
    assert samples.get("maintwatch_backup_last_timestamp_seconds") == new.stat().st_mtime
    assert samples.get("maintwatch_backup_oldest_timestamp_seconds") == old.stat().st_mtime


async def test_truncated_and_bit_flipped_newest_report_failure(
    tmp_path: Path, context: Context
) -> None:
    path = write_gzip(tmp_path / "db.sql.gz", mysqldump_text(5000))
    assert await verify_of(context, path) == 1
    truncate(path)
    assert await verify_of(context, path) == 0
    write_gzip(path, mysqldump_text(5000))
    flip_bit(path)
    assert await verify_of(context, path) == 0


async def test_mysqldump_trailer_through_collector(tmp_path: Path, context: Context) -> None:
    assert await verify_of(context, write(tmp_path / "ok.sql", mysqldump_text())) == 1
    bad = write(tmp_path / "bad.sql", mysqldump_text(trailer=False))
    assert await verify_of(context, bad) == 0


async def test_check_runs_once_per_file_version(
    tmp_path: Path, collectors: Callable[..., BackupsCollector]
) -> None:
    path = write_gzip(tmp_path / "db.sql.gz", mysqldump_text(2000))
    with capture_logs() as logs:
        collector = collectors(directory=str(tmp_path))
        _, first = await verified(collector)
        stamped = (await refresh(collector)).get("maintwatch_backup_last_verify_timestamp_seconds")
        for _ in range(5):
            samples = await refresh(collector)
        assert collector.verifier is not None
        assert collector.verifier.running is None
        assert samples.get("maintwatch_backup_last_verify_timestamp_seconds") == stamped
        assert [e["event"] for e in logs if e["event"].startswith("backup_")] == ["backup_verified"]

        # A new version of the file (same path) is checked again.
        write_gzip(path, mysqldump_text(2000)[:-200], age=HOUR / 2)

        async def failed_now() -> float | None:
            value = (await refresh(collector)).get("maintwatch_backup_last_verify_success")
            return value if value == 0 else None

        await until(failed_now)
    events = [e for e in logs if e["event"].startswith("backup_")]
    assert [e["event"] for e in events] == ["backup_verified", "backup_verify_failed"]
    assert events[1]["path"] == str(path)
    assert events[1]["log_level"] == "error"
    assert "trailer" in events[1]["detail"]
    assert first == 1


async def test_file_being_written_is_not_judged_yet(
    tmp_path: Path, collectors: Callable[..., BackupsCollector]
) -> None:
    good_name, _ = stamp(1)
    write_gzip(tmp_path / good_name, mysqldump_text(1000), age=3 * HOUR)
    collector = collectors(directory=str(tmp_path), timestamp=NAME, settle="10m", timezone="UTC")
    samples, verify = await verified(collector)
    checked = samples.get("maintwatch_backup_last_verify_timestamp_seconds")
    assert verify == 1

    # Today's dump is still being written (fresh mtime, no trailer yet): it is the newest
    # backup, but the previous file's result stays until it settles.
    new_name, new_time = stamp(2)
    partial = write(tmp_path / new_name, gzip.compress(mysqldump_text(1000, trailer=False)), 0)
    for _ in range(3):
        samples = await refresh(collector)
        assert samples.get("maintwatch_backup_last_timestamp_seconds") == new_time
        assert samples.get("maintwatch_backup_last_verify_success") == 1
        assert samples.get("maintwatch_backup_last_verify_timestamp_seconds") == checked
    assert collector.verifier is not None
    assert collector.verifier.running is None

    # The writer died: the file settles incomplete and is judged.
    settled = time.time() - HOUR
    os.utime(partial, (settled, settled))

    async def judged() -> float | None:
        value = (await refresh(collector)).get("maintwatch_backup_last_verify_success")
        return value if value == 0 else None

    assert await until(judged) == 0


async def test_unverifiable_newest_exports_no_verify_series(
    tmp_path: Path, collectors: Callable[..., BackupsCollector]
) -> None:
    write(tmp_path / "a.bin", b"\x00opaque format")
    collector = collectors(directory=str(tmp_path))
    samples = await refresh(collector)
    assert collector.verifier is not None

    async def settled_check() -> bool | None:
        nonlocal samples
        samples = await refresh(collector)
        return True if collector.verifier and collector.verifier.running is None else None

    await until(settled_check)
    samples = await refresh(collector)
    assert samples.all("maintwatch_backup_last_verify_success") == []
    assert samples.get("maintwatch_backup_files") == 1


async def test_verify_none_never_checks(
    tmp_path: Path, collectors: Callable[..., BackupsCollector]
) -> None:
    write_gzip(tmp_path / "db.sql.gz", b"x")
    collector = collectors(directory=str(tmp_path), verify="none")
    samples = await refresh(collector)
    assert collector.verifier is None
    assert samples.all("maintwatch_backup_last_verify_success") == []


async def test_ten_thousand_files(
    tmp_path: Path, collectors: Callable[..., BackupsCollector]
) -> None:
    base = datetime(2025, 1, 1, tzinfo=UTC).timestamp()
    for i in range(10_000):
        name = datetime.fromtimestamp(base + i * 3600, UTC).strftime(NAME)
        fd = os.open(tmp_path / name, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x" * (i % 7))
        os.close(fd)
    collector = collectors(directory=str(tmp_path), timestamp=NAME, timezone="UTC", verify="none")
    samples = await refresh(collector)
    assert samples.get("maintwatch_backup_files") == 10_000
    assert samples.get("maintwatch_backup_size_bytes") == sum(i % 7 for i in range(10_000))
    assert samples.get("maintwatch_backup_last_timestamp_seconds") == base + 9999 * 3600
    assert samples.get("maintwatch_backup_oldest_timestamp_seconds") == base
    assert samples.get("maintwatch_backup_last_size_bytes") == 9999 % 7
    assert samples.get("maintwatch_backup_previous_size_bytes") == 9998 % 7


async def test_date_only_names_take_time_of_day_from_mtime(
    tmp_path: Path, collectors: Callable[..., BackupsCollector]
) -> None:
    # Seed 001: /backup/daily/YYYYMMDD*.sql, one dump a day written in the afternoon.
    day = datetime.now(UTC).date().toordinal() - 2
    dumps = []
    for offset in (0, 1):
        date = datetime.fromordinal(day + offset).replace(tzinfo=UTC)
        path = write(tmp_path / f"{date:%Y%m%d}_neff_paving.sql", mysqldump_text(10))
        written = date.timestamp() + 14 * HOUR + 37 * 60
        os.utime(path, (written, written))
        dumps.append((path, written))
    # A copy of an older dump, touched today: its time stays within its named date.
    old = datetime.fromordinal(day - 5).replace(tzinfo=UTC)
    write(tmp_path / f"{old:%Y%m%d}.sql", mysqldump_text(10))
    collector = collectors(
        directory=str(tmp_path), glob="*.sql", timestamp="%Y%m%d*.sql", timezone="UTC"
    )
    samples = await refresh(collector)
    assert samples.get("maintwatch_backup_last_timestamp_seconds") == dumps[1][1]
    assert samples.get("maintwatch_backup_oldest_timestamp_seconds") == old.timestamp() + 86399
    assert "time within it from the mtime" in collector.describe()
