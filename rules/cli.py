"""`python -m rules generate | backtest | lint`: one parser, one subcommand per concept."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rules import generate
from rules.backtest import cli as backtest
from rules.lint import cli as lint

COMMANDS = {"generate": generate.run, "backtest": backtest.run, "lint": lint.run}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m rules", description="Generate, backtest and lint the alert rules."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    generate.add_parser(sub)
    backtest.add_parser(sub)
    lint.add_parser(sub)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: dispatch to the subcommand."""
    args = parse_args(argv)
    return COMMANDS[args.command](args)
