"""Print a backtest as a terminal table or as JSON for CI (pure formatting)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from maintwatch.durations import format_duration
from rules.backtest.run import Backtest, RuleResult, Side
from rules.backtest.statemachine import Episode

HEADERS = (
    "alert",
    "fired",
    "firing time",
    "longest",
    "breach→fire",
    "flaps",
    "pages/week",
    "added",
    "removed",
    "earlier",
    "later",
)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _dur(seconds: float | None) -> str:
    return "–" if seconds is None else ("0" if seconds == 0 else format_duration(seconds))


def _pair(cur: str, prop: str) -> str:
    return cur if cur == prop else f"{cur} → {prop}"


def _cells(side: Side | None) -> list[str]:
    if side is None:
        return ["–"] * 6
    s = side.stats
    weekly = "" if s.pages_per_week is None else f"{s.pages_per_week:.1f}"
    return [
        str(s.firings),
        _dur(s.firing_seconds),
        _dur(s.longest_seconds),
        _dur(s.breach_to_fire_seconds),
        str(s.flaps),
        weekly,
    ]


def row(result: RuleResult) -> list[str]:
    """Return one table row: current → proposed for each stat, then the diff."""
    cur, prop = _cells(result.current), _cells(result.proposed)
    cells = [result.key + (" *" if result.changed else "")]
    cells += [_pair(c, p) for c, p in zip(cur, prop, strict=True)]
    d = result.diff
    cells += (
        ["", "", "", ""]
        if d is None
        else [f"+{d.added}", f"-{d.removed}", str(d.earlier), str(d.later)]
    )
    return cells


def shown(result: RuleResult) -> bool:
    """Return whether the table lists a rule: it changed or would have fired on either side."""
    fired = any(s is not None and s.stats.firings for s in (result.current, result.proposed))
    return result.changed or fired


def table(run: Backtest) -> str:
    """Return the aligned table, a legend and a count of alerts that never fired."""
    rows = [list(HEADERS)] + [row(r) for r in run.results if shown(r)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    quiet = sum(1 for r in run.results if not shown(r))
    g = run.grid
    lines += [
        "",
        f"range {_iso(g.start)} – {_iso(g.end)}, step {_dur(g.step)}; {run.queries} queries",
        "* changed rule; `a → b` = current → proposed; pages/week counts critical firings",
        f"{quiet} unchanged alert tier(s) would not have fired",
    ]
    return "\n".join(lines)


def _episode(e: Episode) -> dict[str, Any]:
    return {
        "labels": dict(e.labels),
        "active_at": _iso(e.active_at),
        "fired_at": _iso(e.fired_at),
        "ended_at": _iso(e.ended_at),
    }


def _side(side: Side | None) -> dict[str, Any] | None:
    if side is None:
        return None
    return {
        "expr": side.rule.expr,
        "for_seconds": side.rule.for_s,
        "keep_firing_for_seconds": side.rule.keep_firing_for_s,
        "stats": asdict(side.stats),
        "episodes": [_episode(e) for e in side.episodes],
    }


def as_json(run: Backtest, pages_added: int) -> str:
    """Return the whole backtest as JSON: range, per-rule stats, firings and diff."""
    doc = {
        "range": {
            "start": _iso(run.grid.start),
            "end": _iso(run.grid.end),
            "step_seconds": run.grid.step,
        },
        "queries": run.queries,
        "pages_added": pages_added,
        "alerts": [
            {
                "key": r.key,
                "alert": r.rule.alert,
                "severity": r.rule.severity,
                "changed": r.changed,
                "current": _side(r.current),
                "proposed": _side(r.proposed),
                "diff": None if r.diff is None else asdict(r.diff),
            }
            for r in run.results
        ],
    }
    return json.dumps(doc, indent=2)


def pages_added(run: Backtest) -> int:
    """Return the critical firings the proposed rules add over the current ones."""
    total = 0
    for r in run.results:
        if r.rule.severity != "critical" or r.proposed is None:
            continue
        total += r.diff.added if r.diff is not None else r.proposed.stats.firings
    return total
