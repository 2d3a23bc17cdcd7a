"""The lint's checks: each asks Prometheus about one rule and returns its problems."""

from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from maintwatch.durations import format_duration, parse_duration
from rules.lint.promql import Parsed, PromQLError, Selector, parse
from rules.promapi import Prometheus


@dataclass(frozen=True)
class Problem:
    """One finding, located as `file: group/rule`."""

    file: str
    group: str
    rule: str
    message: str
    error: bool = True

    def __str__(self) -> str:
        kind = "" if self.error else "warning: "
        return f"{self.file}: {self.group}/{self.rule}: {kind}{self.message}"


@dataclass(frozen=True)
class RuleRef:
    """A rule as the lint sees it: where it is, and its YAML."""

    file: str
    group: str
    interval: float | None
    rule: dict[str, Any]

    @property
    def name(self) -> str:
        """Return the alert or record name."""
        return str(self.rule.get("alert") or self.rule.get("record") or "?")


@dataclass
class Context:
    """What every check shares: Prometheus, the lookback window, the intervals, known records."""

    prometheus: Prometheus
    lookback: float
    evaluation_interval: float
    scrape_interval: float
    records: set[str]
    max_series: int
    now: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        # Series each alert expression returns now, by `file: group/rule`.
        self.cardinality: dict[str, int] = {}
        # Tiers repeat the same selectors: ask once per selector.
        self.series = cache(self._series)
        self.names = cache(self.prometheus.metric_names)

    def _series(self, selector: str) -> tuple[dict[str, str], ...]:
        return tuple(self.prometheus.series(selector, self.now - self.lookback, self.now))


def _labels(found: tuple[dict[str, str], ...]) -> set[str]:
    return {k for s in found for k in s}


def _missing_name(ctx: Context, sel: Selector) -> str:
    if sel.name in ctx.records:
        return f"recording rule {sel.name} has no data: is its rule file loaded in Prometheus?"
    if ":" in sel.name:
        return f"recording rule {sel.name} is defined in no rule file and has no data"
    close = difflib.get_close_matches(sel.name, ctx.names(), n=1, cutoff=0.8)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"metric {sel.name} has no series{hint}"


def _no_match(ctx: Context, sel: Selector) -> str:
    """Explain why a selector whose metric exists matched nothing."""
    if not sel.name:
        return f"selector {sel.text} matches no series"
    found = ctx.series(sel.name)
    if not found:
        return _missing_name(ctx, sel)
    present = _labels(found)
    for m in sel.matchers:
        if m.name != "__name__" and m.name not in present and not m.accepts_empty():
            known = ", ".join(sorted(present - {"__name__"}))
            return f"label {m.name} is on no series of {sel.name} (its labels: {known})"
    return f"selector {sel.text} matches none of the {len(found)} series of {sel.name}"


def check_selectors(ctx: Context, parsed: Parsed) -> tuple[list[str], set[str]]:
    """Return messages for selectors matching nothing, and the labels of what they match."""
    messages: list[str] = []
    labels: set[str] = set()
    for sel in dict.fromkeys(parsed.selectors):
        found = ctx.series(sel.text)
        if found:
            labels |= _labels(found)
        else:
            messages.append(_no_match(ctx, sel))
    return list(dict.fromkeys(messages)), labels


def check_grouping(parsed: Parsed, labels: set[str], complete: bool) -> list[str]:
    """Return a message per `by`/`on`/… label that no series the expression reads carries."""
    if not complete:
        return []  # a selector matched nothing: its own message says why
    missing = sorted(parsed.grouping_labels - labels)
    return [
        f"label {name} (by/on/ignoring/without) is on none of the series read" for name in missing
    ]


def check_for(ctx: Context, ref: RuleRef) -> list[str]:
    """Return warnings when `for` is shorter than the evaluation or scrape interval."""
    raw = ref.rule.get("for")
    if not raw:
        return []
    hold = parse_duration(str(raw))
    evaluation = ref.interval or ctx.evaluation_interval
    out = []
    if hold < evaluation:
        out.append(
            f"for {raw} is shorter than the evaluation interval {format_duration(evaluation)}"
        )
    if hold < ctx.scrape_interval:
        out.append(
            f"for {raw} is shorter than the scrape interval {format_duration(ctx.scrape_interval)}"
        )
    return out


def check_cardinality(ctx: Context, ref: RuleRef) -> tuple[int, list[str]]:
    """Return how many series the expression returns now, and a warning over the limit."""
    count = len(ctx.prometheus.query(str(ref.rule["expr"]), ctx.now))
    if count > ctx.max_series:
        return count, [f"returns {count} series now, over --max-series {ctx.max_series}"]
    return count, []


def lint_rule(ctx: Context, ref: RuleRef) -> list[Problem]:
    """Return every problem of one rule."""

    def located(messages: list[str], error: bool = True) -> list[Problem]:
        return [Problem(ref.file, ref.group, ref.name, m, error) for m in messages]

    try:
        parsed = parse(str(ref.rule.get("expr", "")))
    except PromQLError as exc:
        return located([f"expr: {exc}"])
    missing, labels = check_selectors(ctx, parsed)
    out = located(missing) + located(check_grouping(parsed, labels, not missing))
    out += located(check_for(ctx, ref), error=False)
    if "alert" in ref.rule:
        count, warnings = check_cardinality(ctx, ref)
        where = f"{ref.file}: {ref.group}/{ref.name}"
        ctx.cardinality[where] = max(count, ctx.cardinality.get(where, 0))
        out += located(warnings, error=False)
    return out
