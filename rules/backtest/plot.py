"""A picture per changed alert tier, and an HTML index showing them side by side.

Each picture plots what the alert compares (when its expression is `value op number`) with the
current and proposed thresholds, and shades when each rule set would have fired: current in
the upper half, proposed in the lower half.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from rules.backtest import report
from rules.backtest.evaluate import Evaluation, Grid, evaluate
from rules.backtest.run import Backtest, RuleResult, Side
from rules.backtest.statemachine import Labels
from rules.backtest.stats import firing_span
from rules.backtest.threshold import Comparison, split
from rules.promapi import Prometheus

MAX_LINES = 6  # more label sets than this make an unreadable picture: keep those that fired
COLORS = {"current": "#c0392b", "proposed": "#2463b5"}


def file_name(key: str) -> str:
    """Return a file-system safe name for a rule key."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") + ".png"


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _x(ts: float) -> float:
    """Return matplotlib's date number for a Unix time."""
    return ts / 86400.0  # days since 1970-01-01, matplotlib's date epoch


def _shade(ax: Axes, side: Side | None, name: str, end: float, lower: bool) -> None:
    if side is None:
        return
    for i, episode in enumerate(e for e in side.episodes if e.fired):
        start, stop = firing_span(episode, end)
        ax.axvspan(
            _x(start),
            _x(stop),
            ymin=0.0 if lower else 0.5,
            ymax=0.5 if lower else 1.0,
            facecolor=COLORS[name],
            edgecolor=COLORS[name],
            linewidth=1,  # a firing of minutes in a range of weeks stays visible
            alpha=0.35,
            label=f"{name} firing" if i == 0 else None,
        )


def _gapped(points: dict[float, float], step: float) -> tuple[list[float], list[float]]:
    """Return x and y with a break (NaN) wherever the series was absent, not a joining line."""
    xs: list[float] = []
    ys: list[float] = []
    for t in sorted(points):
        if xs and t - xs[-1] * 86400.0 > 1.5 * step:
            xs.append(_x(t - step))
            ys.append(float("nan"))
        xs.append(_x(t))
        ys.append(points[t])
    return xs, ys


def _lines(ax: Axes, values: Evaluation, fired: set[Labels], step: float, dashed: bool) -> None:
    ranked = sorted(
        values.values.items(), key=lambda kv: (kv[0] not in fired, -max(kv[1].values()))
    )
    for labels, points in ranked[:MAX_LINES]:
        name = ",".join(f"{k}={v}" for k, v in labels if k not in ("job", "instance")) or "value"
        xs, ys = _gapped(points, step)
        ax.plot(xs, ys, lw=1, ls="--" if dashed else "-", label=name)


def _comparisons(result: RuleResult) -> dict[str, Comparison]:
    sides = (("current", result.current), ("proposed", result.proposed))
    found = {name: split(side.rule.expr) for name, side in sides if side is not None}
    return {name: c for name, c in found.items() if c is not None}


def draw(prometheus: Prometheus, result: RuleResult, grid: Grid, out: Path) -> Path:
    """Draw one rule's picture into `out`; return its path."""
    fig, ax = plt.subplots(figsize=(10, 4.6), dpi=100)
    sides = {"current": result.current, "proposed": result.proposed}
    fired = {e.labels for s in sides.values() if s is not None for e in s.episodes if e.fired}
    comparisons = _comparisons(result)
    plotted: set[str] = set()
    for name, comparison in comparisons.items():
        if comparison.value not in plotted:  # a changed window gives a second, dashed value
            values = evaluate(prometheus, comparison.value, grid)
            _lines(ax, values, fired, grid.step, dashed=bool(plotted))
            plotted.add(comparison.value)
        ax.axhline(comparison.threshold, color=COLORS[name], lw=1.5, ls=":",
                   label=f"{name} threshold {comparison.op} {comparison.threshold:g}")  # fmt: skip
    _shade(ax, sides["current"], "current", grid.end, lower=False)
    _shade(ax, sides["proposed"], "proposed", grid.end, lower=True)
    ax.xaxis_date(tz=UTC)
    ax.set_xlim(_x(grid.start), _x(grid.end))
    ax.set_title(result.key, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    fig.tight_layout()
    path = out / file_name(result.key)
    fig.savefig(path)
    plt.close(fig)
    return path


def _figure(result: RuleResult, image: str) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(h)}</th><td>{html.escape(c)}</td></tr>"
        for h, c in zip(report.HEADERS[1:], report.row(result)[1:], strict=True)
    )
    return (
        f'<figure><img src="{html.escape(image)}" alt="{html.escape(result.key)}">'
        f"<figcaption><table>{cells}</table></figcaption></figure>"
    )


def write_plots(prometheus: Prometheus, run: Backtest, out: Path) -> Path:
    """Draw every changed rule and write `index.html` showing them side by side."""
    out.mkdir(parents=True, exist_ok=True)
    figures = [
        _figure(r, draw(prometheus, r, run.grid, out).name) for r in run.results if r.changed
    ]
    start, end = _when(run.grid.start), _when(run.grid.end)
    page = INDEX.format(
        title=f"Backtest {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC",
        figures="\n".join(figures) or "<p>No rule changed.</p>",
    )
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


INDEX = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1rem; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(46rem, 1fr)); gap: 1rem; }}
figure {{ margin: 0; border: 1px solid #ddd; padding: .5rem; }}
img {{ width: 100%; }}
table {{ font-size: .8rem; border-collapse: collapse; }}
th {{ text-align: left; padding-right: 1rem; font-weight: normal; color: #555; }}
</style></head>
<body><h1>{title}</h1>
<p>Red: current rules, blue: proposed. Shaded: when each would have fired
(current above, proposed below). Dotted lines: thresholds.</p>
<main>
{figures}
</main></body></html>
"""
