"""Reading backup times from file names: strftime patterns, regexes, zones, globs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from exporter.collectors.backups.names import (
    NameClock,
    check_regex,
    resolve_timezone,
    strftime_to_glob,
    strftime_to_regex,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("tongacp_db_%Y%m%d%H%M%S.sql.gz", "tongacp_db_20250501120000.sql.gz", utc(2025, 5, 1, 12)),
        ("tongacp_db_%Y%m%d%H%M%S.sql.gz", "tongacp_db_20250501120000.sql", None),
        ("tongacp_db_%Y%m%d%H%M%S.sql.gz", "tongacp_db_2025050112000.sql.gz", None),
        ("%Y%m%d*.sql", "20250501.sql", utc(2025, 5, 1)),
        ("%Y%m%d*.sql", "20250501_neff_paving.sql", utc(2025, 5, 1)),
        ("%Y%m%d*.sql", "x20250501.sql", None),
        (
            "backup-%Y-%m-%d_%H-%M.tar.gz",
            "backup-2024-02-29_23-59.tar.gz",
            utc(2024, 2, 29, 23, 59),
        ),
        ("backup-%Y-%m-%d.tar.gz", "backup-2023-02-29.tar.gz", None),  # no such day
        ("db-%y%m%d.sql", "db-250501.sql", utc(2025, 5, 1)),
        ("dump.%s.sql", "dump.1746100800.sql", 1746100800.0),
        ("db_%Y%m%dT%H%M%S%z.sql", "db_20250501T140000+0200.sql", utc(2025, 5, 1, 12)),
        ("db_%Y%m%dT%H%M%S%z.sql", "db_20250501T120000Z.sql", utc(2025, 5, 1, 12)),
        ("db_%Y%m%dT%H%M%S%z.sql", "db_20250501T063000-05:30.sql", utc(2025, 5, 1, 12)),
        ("db_%Y?%m.sql", "db_2025_05.sql", utc(2025, 5, 1)),
        ("100%%_%Y.sql", "100%_2025.sql", utc(2025, 1, 1)),
        ("a.b_%Y(%m).sql", "a.b_2025(05).sql", utc(2025, 5, 1)),
        ("a.b_%Y(%m).sql", "axb_2025(05).sql", None),  # `.` is literal, not a regex dot
    ],
)
def test_strftime_patterns(pattern: str, name: str, expected: float | None) -> None:
    assert NameClock.from_strftime(pattern, UTC).timestamp(name) == expected


def test_zone_applies_to_names_without_offset() -> None:
    clock = NameClock.from_strftime("db_%Y%m%d%H%M.sql", resolve_timezone("Pacific/Tongatapu"))
    # Tonga is UTC+13 (no DST in 2025).
    assert clock.timestamp("db_202505011300.sql") == utc(2025, 5, 1)


def test_zone_follows_dst() -> None:
    clock = NameClock.from_strftime("db_%Y%m%d%H%M.sql", resolve_timezone("Europe/Berlin"))
    assert clock.timestamp("db_202501011200.sql") == utc(2025, 1, 1, 11)
    assert clock.timestamp("db_202507011200.sql") == utc(2025, 7, 1, 10)


def test_local_zone_means_naive_local_time() -> None:
    clock = NameClock.from_strftime("db_%Y%m%d%H%M.sql", resolve_timezone("local"))
    assert clock.timestamp("db_202505011200.sql") == datetime(2025, 5, 1, 12).timestamp()


@pytest.mark.parametrize(
    ("regex", "name", "expected"),
    [
        (r"(?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)", "nightly-2025-05-01-full.tar", utc(2025, 5, 1)),
        (r"_(?P<epoch>\d{10})\.", "app_1746100800.tar.zst", 1746100800.0),
        (r"(?P<Y>\d{4})(?P<m>\d\d)(?P<d>\d\d)(?P<H>\d\d)", "x_2025050113.gz", utc(2025, 5, 1, 13)),
        (r"(?P<Y>\d{4})-(?P<m>\d\d)", "no date here", None),
    ],
)
def test_regex_named_groups(regex: str, name: str, expected: float | None) -> None:
    assert NameClock.from_regex(regex, UTC).timestamp(name) == expected


@pytest.mark.parametrize(
    ("pattern", "glob"),
    [
        ("tongacp_db_%Y%m%d%H%M%S.sql.gz", "tongacp_db_*.sql.gz"),
        ("%Y%m%d*.sql", "*.sql"),
        ("100%%_%Y.sql", "100%_*.sql"),
    ],
)
def test_glob_derived_from_pattern(pattern: str, glob: str) -> None:
    assert strftime_to_glob(pattern) == glob


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("db_%Y%Q.sql", "unsupported directive %Q"),
        ("db_%Y%m%Y.sql", "directive %Y appears more than once"),
        ("db_%m%d.sql", "pattern needs a year"),
        ("db_%Y%", "lone '%'"),
    ],
)
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        strftime_to_regex(pattern)


@pytest.mark.parametrize(
    ("regex", "message"),
    [
        (r"(?P<Y>\d{4}", "invalid regex"),
        (r"(?P<year>\d{4})", "unknown named group"),
        (r"(?P<m>\d\d)", "needs a named group Y"),
    ],
)
def test_bad_regexes(regex: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_regex(regex)


def test_timezones() -> None:
    assert resolve_timezone("local") is None
    assert resolve_timezone("UTC") is UTC
    assert str(resolve_timezone("Europe/Berlin")) == "Europe/Berlin"
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        resolve_timezone("Mars/Olympus")


def test_fixed_offset_keeps_sign() -> None:
    clock = NameClock.from_strftime("%Y%m%d%H%M%z", None)
    minus = clock.timestamp("202505011200-0130")
    assert (
        minus
        == (datetime(2025, 5, 1, 12, tzinfo=timezone(-timedelta(hours=1, minutes=30)))).timestamp()
    )


def test_date_only_name_takes_the_time_of_day_from_mtime() -> None:
    clock = NameClock.from_strftime("%Y%m%d*.sql", UTC)
    assert clock.precision == "day"
    # A daily dump written at 14:37 is timed 14:37, not midnight.
    assert clock.timestamp("20250501.sql", utc(2025, 5, 1, 14, 37)) == utc(2025, 5, 1, 14, 37)
    # An mtime outside the named date (a later copy, a touch) is clamped into that date.
    assert clock.timestamp("20250501.sql", utc(2025, 5, 3, 9)) == utc(2025, 5, 2) - 1
    assert clock.timestamp("20250501.sql", utc(2025, 4, 20)) == utc(2025, 5, 1)
    # Without an mtime the name alone is the start of the date.
    assert clock.timestamp("20250501.sql") == utc(2025, 5, 1)


def test_date_only_day_follows_the_zone_across_dst() -> None:
    berlin = resolve_timezone("Europe/Berlin")
    clock = NameClock.from_strftime("db_%Y%m%d.sql", berlin)
    # 2025-03-30 has 23 hours in Berlin: it runs from 22:00 UTC on the 29th to 22:00 UTC.
    late = utc(2025, 3, 30, 21, 59)
    assert clock.timestamp("db_20250330.sql", late) == late
    assert clock.timestamp("db_20250330.sql", utc(2025, 3, 30, 23)) == utc(2025, 3, 30, 22) - 1


@pytest.mark.parametrize(
    ("pattern", "name", "mtime", "expected"),
    [
        # A full time in the name wins over the mtime.
        (
            "db_%Y%m%d%H%M%S.sql",
            "db_20250501120000.sql",
            utc(2025, 5, 1, 12, 30),
            utc(2025, 5, 1, 12),
        ),
        ("dump.%s.sql", "dump.1746100800.sql", 1746100900.0, 1746100800.0),
        # To the hour: minutes from the mtime.
        ("db_%Y%m%d%H.sql", "db_2025050112.sql", utc(2025, 5, 1, 12, 40), utc(2025, 5, 1, 12, 40)),
        # To the month (monthly sets): the day from the mtime, clamped into December.
        ("m_%Y%m.tar", "m_202512.tar", utc(2025, 12, 31, 23), utc(2025, 12, 31, 23)),
        ("m_%Y%m.tar", "m_202512.tar", utc(2026, 1, 2), utc(2026, 1, 1) - 1),
    ],
)
def test_name_precision_bounds_the_mtime(
    pattern: str, name: str, mtime: float, expected: float
) -> None:
    assert NameClock.from_strftime(pattern, UTC).timestamp(name, mtime) == expected


def test_regex_precision_and_description() -> None:
    clock = NameClock.from_regex(r"(?P<Y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)", UTC)
    assert clock.precision == "day"
    assert "mtime" in clock.describe()
    assert NameClock.from_strftime("x_%s", UTC).describe() == "time from the name"
