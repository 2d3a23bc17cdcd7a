"""Shared shape of an alert definition; the expressions live in `defs_*` modules by area.

Tokens in `expr` and `description` are replaced per tier: `@threshold@` (raw number),
`@threshold_pct@` (a ratio as a percentage), `@threshold_dur@` (seconds as `1d2h`), `@for@`,
`@sel@` (the alert's extra label matchers) and `@<param>@` for each of the alert's `params`
(`@<param>_seconds@` too, when the param is a duration).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AlertDef:
    """One alert: PromQL, a fixed one-sentence summary and a templated description."""

    name: str
    group: str
    expr: str
    summary: str
    description: str


@dataclass(frozen=True)
class RecordDef:
    """One recording rule."""

    record: str
    group: str
    expr: str
