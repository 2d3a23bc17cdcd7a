"""Pure line parsers: log levels (Monolog/Laravel lines, JSON lines) and slow query log entries."""

from __future__ import annotations

import functools
import json
import re
from typing import Literal

LogFormat = Literal["auto", "monolog", "json"]

LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
"""Monolog's (RFC 5424) levels: the only `level` label values besides `other`."""

OTHER = "other"
LABEL_VALUES = (*LEVELS, OTHER)

DEFAULT_LEVEL_FIELDS = ("level_name", "level", "severity", "levelname")
"""JSON fields tried in order when no level field is configured."""

_ALIASES = {
    "warn": "warning",
    "err": "error",
    "crit": "critical",
    "fatal": "critical",
    "emerg": "emergency",
    "panic": "emergency",
    "trace": "debug",
    "information": "info",
    "informational": "info",
}
# Monolog's numeric levels (its JsonFormatter writes `level: 400`).
_MONOLOG_NUMBERS = {
    100: "debug",
    200: "info",
    250: "notice",
    300: "warning",
    400: "error",
    500: "critical",
    550: "alert",
    600: "emergency",
}
# pino (Node.js) numbers; they never collide with Monolog's, which start at 100.
_PINO_NUMBERS = {10: "debug", 20: "debug", 30: "info", 40: "warning", 50: "error", 60: "critical"}

# `[2025-05-01 12:00:00] production.ERROR: message` (also ISO datetimes with T, fraction, zone).
_MONOLOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d[T ][^\]]{0,40}\] [\w.-]{1,64}\.([A-Za-z]{1,16}):")


def normalize_level(value: object) -> str:
    """Map a level name or number to one of LEVELS, or `other`."""
    if isinstance(value, bool):
        return OTHER
    if isinstance(value, int | float):
        number = int(value)
        if number != value:
            return OTHER
        return _MONOLOG_NUMBERS.get(number) or _PINO_NUMBERS.get(number) or OTHER
    if not isinstance(value, str):
        return OTHER
    name = value.strip().lower()
    if name.isdigit():
        return normalize_level(int(name))
    name = _ALIASES.get(name, name)
    return name if name in LEVELS else OTHER


def monolog_level(line: str) -> str | None:
    """Return the level of a Monolog/Laravel entry's first line, or None for other lines."""
    match = _MONOLOG_LINE.match(line)
    return normalize_level(match.group(1)) if match else None


@functools.lru_cache(maxsize=64)
def field_pattern(field: str) -> re.Pattern[str]:
    """Return a regex finding `"<last part of field>": "text"` or `: 123` in a cut JSON line."""
    key = re.escape(field.rsplit(".", 1)[-1])
    return re.compile(r'"' + key + r'"\s*:\s*(?:"([^"\\]{0,32})"|(-?\d{1,4})\b)')


def dig(data: object, field: str) -> object:
    """Return the value at a dotted path in parsed JSON, or None."""
    for part in field.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def json_level(line: str, fields: tuple[str, ...], truncated: bool = False) -> str | None:
    """Return the level of a JSON log line (`other` when it has none), or None if not JSON.

    `fields` are tried in order (dotted paths reach into nested objects). A line cut by the
    length cap is no longer valid JSON, so its kept head and tail are searched for the field.
    """
    text = line.lstrip()
    if not text.startswith("{"):
        return None
    if not truncated:
        try:
            data = json.loads(text)
        except ValueError:
            return None
        for field in fields:
            value = dig(data, field)
            if value is not None:
                return normalize_level(value)
        return OTHER
    for field in fields:
        match = field_pattern(field).search(text)
        if match:
            name, number = match.groups()
            return normalize_level(name if name is not None else int(number))
    return OTHER


class LevelParser:
    """Decide, line by line, whether a line starts a log entry and at which level."""

    def __init__(self, fmt: LogFormat = "auto", level_field: str | None = None) -> None:
        self.fmt = fmt
        self.fields = (level_field,) if level_field else DEFAULT_LEVEL_FIELDS

    def level(self, line: str, truncated: bool = False) -> str | None:
        """Return the entry's level, or None for continuation lines (stack traces) and noise."""
        if self.fmt == "monolog":
            return monolog_level(line)
        if self.fmt == "json":
            return json_level(line, self.fields, truncated)
        found = monolog_level(line)
        if found is not None:
            return found
        found = json_level(line, self.fields, truncated)
        # In auto mode a `{…}` line without a level is more likely a dumped context than an entry.
        return None if found == OTHER and not self._has_field(line, truncated) else found

    def _has_field(self, line: str, truncated: bool) -> bool:
        if truncated:
            return any(field_pattern(f).search(line) for f in self.fields)
        try:
            data = json.loads(line)
        except ValueError:
            return False
        return any(dig(data, f) is not None for f in self.fields)


_QUERY_TIME = re.compile(r"^# Query_time:\s*(\d+(?:\.\d+)?)\s")


class SlowLogParser:
    """Turn MySQL/MariaDB slow query log lines into query durations, one per entry.

    An entry's header is a run of `# …` lines starting with `# User@Host:`; its
    `# Query_time:` line is counted once. Query text (which may itself hold `#` lines) and the
    server's start-up banner are skipped.
    """

    def __init__(self) -> None:
        self._in_header = False

    def feed(self, line: str) -> float | None:
        """Return the entry's Query_time when `line` completes an entry header, else None."""
        if line.startswith("# User@Host:"):
            self._in_header = True
            return None
        if not self._in_header:
            return None
        if not line.startswith("#"):
            self._in_header = False
            return None
        match = _QUERY_TIME.match(line + " ")
        if match is None:
            return None
        self._in_header = False
        return float(match.group(1))
