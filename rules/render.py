"""Turn alert definitions plus thresholds into Prometheus rule groups (pure, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from maintwatch.durations import format_duration, parse_duration
from rules.defs import AlertDef, RecordDef
from rules.model import AlertSettings, Thresholds, Tier

_TOKEN = re.compile(r"@[a-z_]+@")


class RenderError(Exception):
    """The thresholds do not fit the alert definitions (missing alert, unknown token…)."""


def number(value: float) -> str:
    """Format a threshold as a PromQL literal without a needless `.0`."""
    if float(value).is_integer():
        return str(int(value))
    return repr(round(float(value), 12))


def percent(value: float) -> str:
    """Format a ratio as a percentage (`0.85` → `85%`)."""
    return f"{round(value * 100, 6):g}%"


def with_selector(expr: str, selector: str) -> str:
    """Put extra matchers where `@sel@` stands, tidying the braces when there are none."""
    out = expr.replace("@sel@", selector.strip().strip(","))
    return out.replace("{,", "{").replace(",}", "}").replace("{}", "")


def substitute(text: str, tokens: Mapping[str, str], where: str) -> str:
    """Replace every `@token@`; raise RenderError naming an unknown one."""
    for key, value in tokens.items():
        text = text.replace(f"@{key}@", value)
    leftover = _TOKEN.findall(text)
    if leftover:
        raise RenderError(f"{where}: unknown token(s) {', '.join(sorted(set(leftover)))}")
    return text


def _tokens(settings: AlertSettings, tier: Tier, extra: Mapping[str, str]) -> dict[str, str]:
    threshold = tier.threshold
    tokens = {
        "threshold": number(threshold),
        "threshold_pct": percent(threshold),
        "threshold_dur": format_duration(threshold),
        "for": format_duration(tier.for_ or 0.0),
    }
    return {**tokens, **extra, **settings.params, **_seconds(settings.params)}


def _seconds(params: Mapping[str, str]) -> dict[str, str]:
    """Return `<param>_seconds` for each duration param: PromQL compares numbers, not `15m`."""
    out = {}
    for key, value in params.items():
        try:
            out[f"{key}_seconds"] = number(parse_duration(value))
        except ValueError:
            continue  # not a duration (a ratio, a job name): no seconds form
    return out


def alert_rule(
    alert: AlertDef, settings: AlertSettings, tier: Tier, base_url: str, extra: Mapping[str, str]
) -> dict[str, Any]:
    """Render one tier of an alert as a rule dict."""
    tokens = _tokens(settings, tier, extra)
    where = f"alerts.{alert.name}"
    rule: dict[str, Any] = {
        "alert": alert.name,
        "expr": substitute(with_selector(alert.expr, settings.selector), tokens, where),
    }
    if tier.for_:
        rule["for"] = format_duration(tier.for_)
    if settings.keep_firing_for:
        rule["keep_firing_for"] = format_duration(settings.keep_firing_for)
    rule["labels"] = {"severity": tier.severity}
    rule["annotations"] = {
        "summary": alert.summary,
        "description": substitute(alert.description, tokens, where),
        "runbook_url": f"{base_url.rstrip('/')}/{alert.name}.md",
    }
    return rule


def record_rule(record: RecordDef) -> dict[str, Any]:
    """Render one recording rule."""
    return {"record": record.record, "expr": record.expr}


def alert_rules(
    alerts: list[AlertDef], thresholds: Thresholds, extra: Mapping[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """Render every alert tier, grouped by rule group; fail on missing or unknown settings."""
    known = {a.name for a in alerts}
    unknown = sorted(set(thresholds.alerts) - known)
    missing = sorted(known - set(thresholds.alerts))
    problems = [f"alerts.{n}: no such alert (known: see rules/defs_*.py)" for n in unknown]
    problems += [f"alerts.{n}: missing; every alert needs its thresholds" for n in missing]
    if problems:
        raise RenderError("; ".join(problems))
    groups: dict[str, list[dict[str, Any]]] = {}
    for alert in alerts:
        settings = thresholds.alerts[alert.name]
        for tier in settings.effective_tiers():
            rule = alert_rule(alert, settings, tier, thresholds.runbook_base_url, extra)
            groups.setdefault(alert.group, []).append(rule)
    return groups
