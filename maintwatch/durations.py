"""Parse and format Prometheus-style durations (`30s`, `5m`, `26h`, `30d`, `1h30m`)."""

from __future__ import annotations

import math
import re

_UNITS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise ValueError naming the bad input."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for match in _PART.finditer(raw):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == len(raw) and not math.isfinite(total):
        raise ValueError(f"duration {text!r} is too large")
    if pos != len(raw):
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit "
            "(ms, s, m, h, d, w, y), e.g. 30s, 5m, 26h"
        )
    return total


def format_duration(seconds: float) -> str:
    """Format seconds the way Prometheus prints durations (`1d2h`, `90s` → `1m30s`)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    remaining = round(seconds)
    parts: list[str] = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
