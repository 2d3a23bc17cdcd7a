"""Backtest two rule sets over one range: evaluate, replay, summarize and compare."""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.backtest.diff import FiringDiff, compare
from rules.backtest.evaluate import Evaluation, Grid, evaluate
from rules.backtest.rulesets import AlertRule, changed
from rules.backtest.statemachine import Episode, episodes
from rules.backtest.stats import AlertStats, summarize
from rules.lint.promql import parse
from rules.promapi import Prometheus, PrometheusError


@dataclass(frozen=True)
class Side:
    """One rule set's rule for an alert tier, and what it would have done."""

    rule: AlertRule
    episodes: list[Episode]
    stats: AlertStats


@dataclass(frozen=True)
class RuleResult:
    """An alert tier in the current and/or proposed rule set."""

    key: str
    current: Side | None
    proposed: Side | None
    diff: FiringDiff | None

    @property
    def changed(self) -> bool:
        """Return whether the proposed rule differs from (or only exists on one side of) current."""
        if self.current is None or self.proposed is None:
            return True
        return changed(self.current.rule, self.proposed.rule)

    @property
    def rule(self) -> AlertRule:
        """Return the proposed rule when there is one, else the current one."""
        side = self.proposed or self.current
        assert side is not None
        return side.rule


@dataclass
class Backtest:
    """The whole run: its grid, per-rule results and how many queries it took."""

    grid: Grid
    results: list[RuleResult] = field(default_factory=list)
    queries: int = 0


def _side(prometheus: Prometheus, rule: AlertRule, grid: Grid) -> Side:
    answer: Evaluation = evaluate(prometheus, rule.expr, grid)
    replayed = episodes(grid.times(), answer.present(), rule.for_s, rule.keep_firing_for_s)
    return Side(rule, replayed, summarize(replayed, rule.severity, grid.start, grid.end))


def check_data(prometheus: Prometheus, rules: list[AlertRule], grid: Grid) -> None:
    """Raise PrometheusError when no metric any rule reads has a series in the range."""
    names = sorted({s.name for r in rules for s in parse(r.expr).selectors if s.name})
    if not names:
        return
    matchers = [f'{{__name__="{n}"}}' for n in names]
    found = prometheus.get(
        "/api/v1/series",
        {"match[]": matchers, "start": f"{grid.start:.3f}", "end": f"{grid.end:.3f}", "limit": "1"},
    )
    if not found:
        raise PrometheusError(
            f"{prometheus.url}: no series of any metric the rules read between"
            f" {grid.start:.0f} and {grid.end:.0f} (is this the Prometheus that scrapes"
            " maintwatch, and is the range inside its retention?)"
        )


def backtest(
    prometheus: Prometheus,
    current: list[AlertRule],
    proposed: list[AlertRule],
    grid: Grid,
    only: set[str] | None = None,
) -> Backtest:
    """Evaluate every rule of both sets (an unchanged rule once) and compare them."""
    before = prometheus.queries
    old = {r.key: r for r in current if only is None or r.alert in only}
    new = {r.key: r for r in proposed if only is None or r.alert in only}
    check_data(prometheus, [*old.values(), *new.values()], grid)
    run = Backtest(grid)
    for key in list(old) + [k for k in new if k not in old]:
        cur = _side(prometheus, old[key], grid) if key in old else None
        if key in new and cur is not None and not changed(old[key], new[key]):
            prop: Side | None = Side(new[key], cur.episodes, cur.stats)
        else:
            prop = _side(prometheus, new[key], grid) if key in new else None
        diff = None
        if cur is not None and prop is not None:
            diff = compare(cur.episodes, prop.episodes, grid.end, grid.step)
        run.results.append(RuleResult(key, cur, prop, diff))
    run.queries = prometheus.queries - before
    return run
