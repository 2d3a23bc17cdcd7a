"""`--suggest ALERT`: the most sensitive threshold that would have fired at most N times.

The value the alert compares is fetched once; each candidate threshold is then replayed
locally through the same state machine, by bisection over the values seen. Firings hardly ever
rise with a stricter threshold (only when one long firing splits in two), so bisection is used,
and the firing count printed is the one replayed at the answer.
"""

from __future__ import annotations

from rules.backtest.evaluate import Evaluation, Grid, evaluate
from rules.backtest.rulesets import AlertRule
from rules.backtest.statemachine import episodes
from rules.backtest.threshold import Comparison, split
from rules.promapi import Prometheus


def firings(
    values: Evaluation, comparison: Comparison, threshold: float, rule: AlertRule, grid: Grid
) -> int:
    """Return how often the rule would have fired with `threshold` (pure)."""
    present = {
        labels: {t for t, v in points.items() if comparison.holds(v, threshold)}
        for labels, points in values.values.items()
    }
    replayed = episodes(grid.times(), present, rule.for_s, rule.keep_firing_for_s)
    return sum(1 for e in replayed if e.fired)


def search(
    values: Evaluation, comparison: Comparison, rule: AlertRule, grid: Grid, limit: int
) -> tuple[float, int] | None:
    """Return (threshold, firings): the most sensitive seen value firing at most `limit` times."""
    seen = sorted({v for points in values.values.values() for v in points.values()})
    # Order candidates from the strictest to the most sensitive.
    upward = comparison.op in (">", ">=")
    candidates = seen[::-1] if upward else seen
    if not candidates:
        return None
    count = firings(values, comparison, candidates[0], rule, grid)
    if count > limit:
        return None
    low, high = 0, len(candidates) - 1  # candidates[low] is known to be within the limit
    while low < high:
        middle = (low + high + 1) // 2
        if firings(values, comparison, candidates[middle], rule, grid) <= limit:
            low = middle
        else:
            high = middle - 1
    best = candidates[low]
    return best, firings(values, comparison, best, rule, grid)


def suggest(
    prometheus: Prometheus, rules: list[AlertRule], alert: str, limit: int, grid: Grid
) -> str:
    """Return one line per tier of `alert`; ValueError when it cannot be searched."""
    tiers = [r for r in rules if r.alert == alert]
    if not tiers:
        raise ValueError(f"--suggest: no alert named {alert}")
    lines, cache = [], {}
    for rule in tiers:
        comparison = split(rule.expr)
        if comparison is None:
            raise ValueError(f"--suggest: {rule.key} is not `value op number`; edit it by hand")
        if comparison.value not in cache:
            cache[comparison.value] = evaluate(prometheus, comparison.value, grid)
        values = cache[comparison.value]
        now = firings(values, comparison, comparison.threshold, rule, grid)
        found = search(values, comparison, rule, grid, limit)
        head = f"{rule.key}: {comparison.op} {comparison.threshold:g} fired {now} time(s)"
        if found is None:
            lines.append(f"{head}; no threshold keeps it at {limit} or fewer (look at `for`)")
        else:
            lines.append(
                f"{head}; {comparison.op} {found[0]:.6g} would have fired {found[1]} time(s)"
                f" (limit {limit})"
            )
    return "\n".join(lines)
