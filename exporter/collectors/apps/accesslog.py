"""Pure access-log parsing: the HTTP status class of a request line (combined format, JSON lines).

- Combined/common log format, as nginx (`combined`, `main`) and Apache (`common`, `combined`,
  `vhost_combined`) write it: the status is the first field after the quoted request line,
  which follows the bracketed time: `… [06/Dec/2026:14:37:01 +0000] "GET / HTTP/1.1" 502 …`.
- JSON lines, as request loggers write them: morgan-json, pino-http (`res.statusCode`),
  express-winston (`meta.res.statusCode`), ECS (`http.response.status_code`), Monolog JSON
  with the status in `context`. The first field found is used.
"""

from __future__ import annotations

import json
import re
from typing import Literal

from exporter.logparse import dig, field_pattern

AccessFormat = Literal["auto", "combined", "json"]

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
"""The `code` label values: status classes only, so cardinality stays bounded."""

DEFAULT_STATUS_FIELDS = (
    "status",
    "statusCode",
    "status_code",
    "res.statusCode",
    "response.status",
    "response.statusCode",
    "meta.res.statusCode",
    "http.response.status_code",
    "context.status",
    "context.status_code",
)
"""JSON fields tried in order when no status field is configured (dotted paths nest)."""

# The quoted request may hold escaped quotes (Apache writes \", nginx \x22).
_COMBINED = re.compile(r'\] "(?:[^"\\]|\\.)*" (\d{3}) ')


def status_class(value: object) -> str | None:
    """Return `2xx`… for a status code (number or digit string 100-599), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 100 <= value <= 599:
        return f"{value // 100}xx"
    return None


def combined_status(line: str) -> str | None:
    """Return the status class of a combined/common format line, or None if it is not one."""
    match = _COMBINED.search(line + " ")
    return status_class(match.group(1)) if match else None


def json_status(line: str, fields: tuple[str, ...], truncated: bool = False) -> str | None:
    """Return the status class of a JSON request line, or None (not JSON, or no status)."""
    text = line.lstrip()
    if not text.startswith("{"):
        return None
    if truncated:
        # A line cut by the length cap is no longer JSON: search its kept head and tail.
        for name in fields:
            match = field_pattern(name).search(text)
            if match:
                found = status_class(match.group(1) or match.group(2))
                if found is not None:
                    return found
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    for name in fields:
        found = status_class(dig(data, name))
        if found is not None:
            return found
    return None


class StatusParser:
    """Return, line by line, the status class of a request, or None for other lines."""

    def __init__(self, fmt: AccessFormat = "auto", status_field: str | None = None) -> None:
        self.fmt = fmt
        self.fields = (status_field,) if status_field else DEFAULT_STATUS_FIELDS

    def status(self, line: str, truncated: bool = False) -> str | None:
        """Return `1xx`…`5xx` for a request line, None for anything else."""
        if self.fmt != "json":
            found = combined_status(line)
            if found is not None or self.fmt == "combined":
                return found
        return json_status(line, self.fields, truncated)
