"""`python -m rules backtest`: flags, range, and exit codes."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime
from pathlib import Path

from maintwatch.configload import ConfigError
from rules.backtest import report
from rules.backtest.evaluate import Grid
from rules.backtest.rulesets import AlertRule, load_rules
from rules.backtest.run import Backtest, backtest
from rules.generate import DEFAULT_THRESHOLDS
from rules.promapi import (
    Prometheus,
    PrometheusError,
    add_prometheus_flags,
    flag_duration,
    from_args,
    intervals,
)
from rules.render import RenderError

PAGES_EXCEEDED = 3


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `backtest` subcommand."""
    p = sub.add_parser("backtest", help="replay current vs proposed thresholds over history")
    add_prometheus_flags(p)
    p.add_argument("--current", type=Path, default=DEFAULT_THRESHOLDS, help="thresholds in force")
    p.add_argument("--thresholds", type=Path, default=None, help="proposed thresholds file")
    p.add_argument("--since", default="14d", help="range ending now (default 14d)")
    p.add_argument("--start", default=None, help="RFC 3339 time or Unix seconds")
    p.add_argument("--end", default=None, help="RFC 3339 time or Unix seconds (default now)")
    p.add_argument("--step", default=None, help="evaluation interval (default: Prometheus')")
    p.add_argument("--alert", action="append", default=None, help="only this alert (repeatable)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.add_argument(
        "--max-added-pages",
        type=int,
        default=None,
        help=f"exit {PAGES_EXCEEDED} when the proposal adds more critical firings than this",
    )
    p.add_argument(
        "--plots", type=Path, default=None, help="write a picture per changed alert here"
    )
    p.add_argument("--suggest", default=None, metavar="ALERT", help="search ALERT's threshold")
    p.add_argument("--max-firings", type=int, default=1, help="with --suggest: firings allowed")


def parse_time(text: str, flag: str) -> float:
    """Parse RFC 3339 or Unix seconds; ValueError naming the flag."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(
            f"{flag}: expected RFC 3339 (2026-03-01T00:00:00Z) or Unix seconds, got {text!r}"
        ) from None


def make_grid(args: argparse.Namespace, prometheus: Prometheus) -> Grid:
    """Return the evaluation grid from --start/--end/--since/--step."""
    since = flag_duration(args.since, "--since")
    end = parse_time(args.end, "--end") if args.end else time.time()
    start = parse_time(args.start, "--start") if args.start else None
    step = flag_duration(args.step, "--step") if args.step else intervals(prometheus.config())[0]
    if step <= 0:
        raise ValueError("--step: must be positive")
    if start is None:
        # Whole steps, so reruns over the same window ask Prometheus the same questions.
        end = end // step * step
        start = end - since
    if start >= end:
        raise ValueError("--start: must be before --end")
    return Grid(start, end, step)


def run(args: argparse.Namespace) -> int:
    """Run the backtest; print the report; return the exit code."""
    try:
        current = load_rules(args.current)
        proposed = load_rules(args.thresholds) if args.thresholds else current
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    except RenderError as exc:
        print(f"{args.thresholds or args.current}: {exc}", file=sys.stderr)
        return 1
    try:
        prometheus = from_args(args)
        grid = make_grid(args, prometheus)
        if args.suggest:
            return _suggest(args, prometheus, proposed, grid)
        only = set(args.alert) if args.alert else None
        result = backtest(prometheus, current, proposed, grid, only)
        added = report.pages_added(result)
        print(report.as_json(result, added) if args.format == "json" else report.table(result))
        if args.plots is not None:
            _plots(prometheus, result, args.plots)
    except (PrometheusError, ValueError) as exc:
        print(f"backtest: {exc}", file=sys.stderr)
        return 1
    limit = args.max_added_pages
    if limit is not None and added > limit:
        message = f"the proposal adds {added} page(s), over --max-added-pages {limit}"
        print(f"backtest: {message}", file=sys.stderr)
        return PAGES_EXCEEDED
    return 0


def _plots(prometheus: Prometheus, result: Backtest, out: Path) -> None:
    try:
        from rules.backtest.plot import write_plots
    except ImportError:
        raise ValueError("--plots: needs matplotlib (pip install 'maintwatch[plots]')") from None
    print(f"pictures: {write_plots(prometheus, result, out)}", file=sys.stderr)


def _suggest(
    args: argparse.Namespace, prometheus: Prometheus, rules: list[AlertRule], grid: Grid
) -> int:
    from rules.backtest.suggest import suggest

    print(suggest(prometheus, rules, args.suggest, args.max_firings, grid))
    return 0
