"""The alerting rules of a thresholds file, each with the identity the backtest keys it by."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maintwatch.durations import parse_duration
from rules.generate import render_groups
from rules.model import load_thresholds


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule: one tier of an alert (its labels tell the tiers apart)."""

    group: str
    alert: str
    expr: str
    for_s: float
    keep_firing_for_s: float
    labels: tuple[tuple[str, str], ...]

    @property
    def key(self) -> str:
        """Return `Alert{label="value",…}`, unique within a rule set."""
        inner = ",".join(f'{k}="{v}"' for k, v in self.labels)
        return f"{self.alert}{{{inner}}}"

    @property
    def severity(self) -> str:
        """Return the rule's severity label ('' when it has none)."""
        return dict(self.labels).get("severity", "")


def alert_rules(groups: dict[str, list[dict[str, Any]]]) -> list[AlertRule]:
    """Return every alerting rule of rendered rule groups, in file order (pure)."""
    out = []
    for group, rules in groups.items():
        for rule in rules:
            if "alert" not in rule:
                continue
            labels = tuple(sorted((rule.get("labels") or {}).items()))
            out.append(
                AlertRule(
                    group=group,
                    alert=rule["alert"],
                    expr=rule["expr"],
                    for_s=parse_duration(rule.get("for", "0s")),
                    keep_firing_for_s=parse_duration(rule.get("keep_firing_for", "0s")),
                    labels=labels,
                )
            )
    return out


def load_rules(thresholds: Path) -> list[AlertRule]:
    """Render a thresholds file and return its alerting rules (ConfigError, RenderError)."""
    return alert_rules(render_groups(load_thresholds(thresholds)))


def changed(current: AlertRule, proposed: AlertRule) -> bool:
    """Return whether the proposed rule would evaluate differently from the current one."""
    return (current.expr, current.for_s, current.keep_firing_for_s) != (
        proposed.expr,
        proposed.for_s,
        proposed.keep_firing_for_s,
    )
