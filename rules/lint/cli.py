"""`python -m rules lint`: read rule files, lint every rule, print errors then warnings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from maintwatch.durations import parse_duration
from rules.generate import HERE
from rules.lint.checks import Context, Problem, RuleRef, lint_rule
from rules.promapi import (
    PrometheusError,
    add_prometheus_flags,
    flag_duration,
    from_args,
    intervals,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the `lint` subcommand."""
    p = sub.add_parser("lint", help="check rule files against the series Prometheus holds")
    add_prometheus_flags(p)
    p.add_argument("files", nargs="*", type=Path, help="rule files (default rules/*.rules.yml)")
    p.add_argument(
        "--lookback", default="1h", help="a selector passes if it matched in this window"
    )
    p.add_argument("--max-series", type=int, default=1000, help="warn above this cardinality")
    p.add_argument(
        "--cardinality",
        action="store_true",
        help="also print how many series each alert expression returns now",
    )


def read_rules(paths: list[Path]) -> list[RuleRef]:
    """Return every rule of the files; ValueError naming a file that is not a rule file."""
    out = []
    for path in paths:
        try:
            doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: {exc}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("groups"), list):
            raise ValueError(f"{path}: groups: expected a list of rule groups")
        for group in doc["groups"]:
            interval = parse_duration(group["interval"]) if group.get("interval") else None
            for rule in group.get("rules") or []:
                out.append(RuleRef(str(path), str(group.get("name")), interval, rule))
    return out


def run(args: argparse.Namespace) -> int:
    """Lint; print `file: group/rule: message` lines; exit 1 when there is an error."""
    paths = args.files or sorted(HERE.glob("*.rules.yml"))
    try:
        refs = read_rules(paths)
        prometheus = from_args(args)
        evaluation, scrape = intervals(prometheus.config())
        ctx = Context(
            prometheus,
            lookback=flag_duration(args.lookback, "--lookback"),
            evaluation_interval=evaluation,
            scrape_interval=scrape,
            records={str(r.rule["record"]) for r in refs if "record" in r.rule},
            max_series=args.max_series,
        )
        problems: list[Problem] = []
        for ref in refs:
            problems += [p for p in lint_rule(ctx, ref) if p not in problems]
    except (PrometheusError, ValueError) as exc:
        print(f"lint: {exc}", file=sys.stderr)
        return 1
    errors = [p for p in problems if p.error]
    warnings = [p for p in problems if not p.error]
    for problem in errors + warnings:
        print(problem)
    if args.cardinality:
        for where, count in ctx.cardinality.items():
            print(f"{where}: {count} series now")
    counts = f"{len(errors)} error(s), {len(warnings)} warning(s)"
    print(f"{len(refs)} rules in {len(paths)} files: {counts}", file=sys.stderr)
    return 1 if errors else 0
