"""Pure log line parsing: level normalisation, Monolog lines, JSON lines."""

from __future__ import annotations

import pytest

from exporter.logparse import LABEL_VALUES, LevelParser, json_level, monolog_level, normalize_level


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("ERROR", "error"),
        ("Warning", "warning"),
        ("warn", "warning"),
        ("fatal", "critical"),
        ("EMERG", "emergency"),
        ("trace", "debug"),
        (400, "error"),
        (250, "notice"),
        (550, "alert"),
        ("600", "emergency"),
        (30, "info"),
        (60, "critical"),
        (401, "other"),
        (400.5, "other"),
        (True, "other"),
        (None, "other"),
        ("verbose", "other"),
    ],
)
def test_normalize_level(value: object, level: str) -> None:
    assert normalize_level(value) == level
    assert level in LABEL_VALUES


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ("[2025-05-01 12:00:00] production.ERROR: Boom", "error"),
        ("[2025-05-01T12:00:00.123456+02:00] local.DEBUG: x {} []", "debug"),
        ("[2025-05-01 12:00:00] my-channel.v2.Notice: dotted channel", "notice"),
        ("[2025-05-01 12:00:00] production.CUSTOM: x", "other"),
        ("[stacktrace]", None),
        ("#0 /var/www/vendor/laravel/framework/src/Foo.php(12): bar()", None),
        ('"} ', None),
        ("", None),
        ("production.ERROR: no date", None),
    ],
)
def test_monolog_level(line: str, level: str | None) -> None:
    assert monolog_level(line) == level


def test_json_level_fields_and_nesting() -> None:
    assert json_level('{"log": {"level": "warn"}}', ("log.level",)) == "warning"
    assert json_level('{"level_name": "INFO", "level": 400}', ("level_name", "level")) == "info"
    assert json_level('{"msg": "x"}', ("level",)) == "other"
    assert json_level("not json", ("level",)) is None
    assert json_level("{broken", ("level",)) is None


def test_json_level_of_a_cut_line_searches_head_and_tail() -> None:
    cut = '{"message":"big","context":{"blob":"xxxx xxxx"},"level":500,"level_name":"CRITICAL"}'
    assert json_level(cut, ("level_name", "level"), truncated=True) == "critical"
    assert json_level('{"message":"xxxx xxxx', ("level",), truncated=True) == "other"


def test_auto_parser_mixes_formats_and_ignores_context_dumps() -> None:
    parser = LevelParser()
    assert parser.level("[2025-05-01 12:00:00] production.ALERT: x") == "alert"
    assert parser.level('{"severity": "ERROR"}') == "error"
    assert parser.level('{"severity": "LOUD"}') == "other"
    assert parser.level('{"user": 1}') is None
    assert parser.level('{"user": 1, "blob": "xx xx"', truncated=True) is None


def test_fixed_format_parsers() -> None:
    monolog = LevelParser("monolog")
    assert monolog.level('{"level": "error"}') is None
    json_only = LevelParser("json", "lvl")
    assert json_only.level("[2025-05-01 12:00:00] production.ERROR: x") is None
    assert json_only.level('{"level": "error"}') == "other"
    assert json_only.level('{"lvl": "error"}') == "error"
