"""`python -m dashboards generate [--check] [--thresholds FILE] [--out DIR]`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from dashboards.boards import build_all
from maintwatch.configload import ConfigError
from rules.generate import DEFAULT_THRESHOLDS
from rules.model import load_thresholds

HERE = Path(__file__).resolve().parent


def render_files(thresholds_path: Path) -> dict[str, str]:
    """Return file name → JSON text of every dashboard."""
    boards = build_all(load_thresholds(thresholds_path))
    return {f"{stem}.json": json.dumps(b, indent=2) + "\n" for stem, b in boards.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: render, then write or check."""
    parser = argparse.ArgumentParser(prog="python -m dashboards", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="render dashboards/*.json")
    gen.add_argument("--thresholds", type=Path, default=DEFAULT_THRESHOLDS)
    gen.add_argument("--out", type=Path, default=HERE)
    gen.add_argument("--check", action="store_true", help="fail when the files are out of date")
    args = parser.parse_args(argv)
    try:
        files = render_files(args.thresholds)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        return 1
    stale = [n for n, text in files.items() if _read(args.out / n) != text]
    stale += [p.name for p in sorted(args.out.glob("*.json")) if p.name not in files]
    if args.check:
        for name in stale:
            print(
                f"{args.out / name}: out of date; run `python -m dashboards generate`",
                file=sys.stderr,
            )
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for path in args.out.glob("*.json"):
        if path.name not in files:
            path.unlink()
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} dashboards to {args.out}")
    return 0


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None
