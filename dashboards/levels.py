"""Turn an alert's tiers from thresholds.yaml into panel threshold steps."""

from __future__ import annotations

from rules.model import Thresholds


def steps(t: Thresholds, alert: str, scale: float = 1.0) -> list[tuple[float, str]]:
    """Return an alert's tiers as panel threshold steps (value, colour), ascending."""
    tiers = t.alerts[alert].effective_tiers()
    return sorted((tier.threshold * scale, tier.severity) for tier in tiers)


def below(t: Thresholds, alert: str, scale: float = 1.0) -> list[tuple[float, str]]:
    """Return steps for an alert that fires *below* its thresholds (red low, green high)."""
    tiers = sorted(t.alerts[alert].effective_tiers(), key=lambda x: x.threshold)
    colours = [tier.severity for tier in tiers]
    # Grafana colours upwards from each step: red until the lowest bound, then orange, then ok.
    return [(tiers[i].threshold * scale, colours[i + 1]) for i in range(len(tiers) - 1)] + [
        (tiers[-1].threshold * scale, "ok")
    ]


def counted(t: Thresholds, alert: str) -> list[tuple[float, str]]:
    """Return steps for an alert that fires when a count exceeds its thresholds.

    Grafana colours a value from each step up, the rule only past it: a count past n is n + 1.
    """
    return [(value + 1, colour) for value, colour in steps(t, alert)]
