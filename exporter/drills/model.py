"""What a drill found: its checks and result, as plain data that survives restarts (JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class Refused(Exception):
    """The drill will not touch the scratch target; the message says exactly why."""


@dataclass(frozen=True)
class Check:
    """One check after a restore: `name` is bounded by config (`table:users`, `path:x`…)."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class DrillResult:
    """The outcome of one drill of one backup set."""

    ok: bool
    reason: str
    file: str
    started: float
    finished: float
    duration: float  # recovery time: scratch created, dump restored, checks done
    restored_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    files: int | None = None  # tarballs: regular files extracted
    size: int | None = None  # tarballs: bytes extracted
    kept: str | None = None  # scratch kept for inspection after a failure

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DrillResult:
        """Rebuild a result written by `to_json`."""
        checks = tuple(Check(**c) for c in data.get("checks", ()))
        return cls(**{**data, "checks": checks})


def failed(file: str, started: float, finished: float, reason: str) -> DrillResult:
    """Return the result of a drill that ended before its checks (refused, broken, killed)."""
    return DrillResult(False, reason, file, started, finished, finished - started)
