"""The `backups:` config section: defaults, derived glob, and located error messages."""

from __future__ import annotations

import pytest

from exporter.collectors.registry import load_config_text
from maintwatch.configload import ConfigError


def problems(yaml_text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(yaml_text, "x.yml")
    return info.value.problems


def test_defaults_and_derived_glob() -> None:
    config = load_config_text(
        "backups:\n"
        "  - name: tongacp_db\n"
        "    directory: /var/backups/tongacp/database\n"
        "    timestamp: tongacp_db_%Y%m%d%H%M%S.sql.gz\n"
        "    max_age: 26h\n"
        "    retention: 30d\n",
        "x.yml",
    )
    (item,) = config.backups  # type: ignore[attr-defined]
    assert item.effective_glob() == "tongacp_db_*.sql.gz"
    assert (item.max_age, item.retention, item.settle) == (26 * 3600, 30 * 86400, 60)
    assert (item.verify, item.timezone, item.pg_restore) == ("auto", "local", "pg_restore")


def test_glob_defaults_to_everything() -> None:
    config = load_config_text("backups: [{name: a, directory: /b}]", "x.yml")
    assert config.backups[0].effective_glob() == "*"  # type: ignore[attr-defined]
    assert config.backups[0].retention is None  # type: ignore[attr-defined]


def test_bad_duration_is_located() -> None:
    assert problems("backups: [{name: db, directory: /b, max_age: 26x}]") == [
        "x.yml: backups[0].max_age: invalid duration '26x': use a number and a unit "
        "(ms, s, m, h, d, w, y), e.g. 30s, 5m, 26h"
    ]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("{name: db}", "x.yml: backups[0].directory: required field is missing"),
        (
            "{name: db, directory: /b, glob: 'sub/*.gz'}",
            "x.yml: backups[0].glob: glob matches file names inside `directory`; "
            "it cannot hold '/'",
        ),
        (
            "{name: db, directory: /b, timestamp: 'db_%Y%q.sql'}",
            "x.yml: backups[0].timestamp: unsupported directive %q "
            "(supported: %Y %y %m %d %H %M %S %s %z %%)",
        ),
        (
            "{name: db, directory: /b, timestamp: '/backup/daily/%Y%m%d*.sql'}",
            "x.yml: backups[0].timestamp: timestamp is a file-name pattern; "
            "put the path in `directory`",
        ),
        (
            "{name: db, directory: /b, timestamp_regex: '(?P<year>\\d+)'}",
            "x.yml: backups[0].timestamp_regex: unknown named group(s) year "
            "(use H, M, S, Y, d, epoch, m, y, z)",
        ),
        (
            "{name: db, directory: /b, timezone: Mars/Olympus}",
            "x.yml: backups[0].timezone: unknown time zone 'Mars/Olympus' "
            "(use an IANA name, UTC or local)",
        ),
        (
            "{name: db, directory: /b, verify: rar}",
            "x.yml: backups[0].verify: expected one of: auto, none, gzip, zstd, tar, "
            "tar.gz, tar.zst, sql, sql.gz, sql.zst, pgdump, zip, got 'rar'",
        ),
        (
            "{name: db, directory: /b, settle: -5}",
            "x.yml: backups[0].settle: duration must be zero or more and finite, got -5",
        ),
        ("{name: db, directory: /b, colour: red}", "x.yml: backups[0].colour: unknown field"),
        (
            "{name: db, directory: /b, timestamp: 'd%Y', timestamp_regex: '(?P<Y>.)'}",
            "x.yml: backups[0]: set either timestamp or timestamp_regex, not both",
        ),
    ],
)
def test_bad_values_are_located(item: str, expected: str) -> None:
    assert problems(f"backups: [{item}]") == [expected]


def test_every_problem_is_reported() -> None:
    found = problems(
        "backups:\n"
        "  - {name: a, directory: /b, max_age: 26x}\n"
        "  - {name: b, directory: /b, retention: soon}\n"
    )
    assert [p.split(":")[1].strip() for p in found] == [
        "backups[0].max_age",
        "backups[1].retention",
    ]


def test_duplicate_set_names() -> None:
    found = problems("backups: [{name: a, directory: /b}, {name: a, directory: /c}]")
    assert found == ["x.yml: backups[1].name: duplicate name 'a' (first at backups[0])"]
