"""Helpers for the rules tests: where things are, and reading the generated rule files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
RUNBOOKS = ROOT / "docs" / "runbooks"


def rule_files() -> list[Path]:
    """Return the committed rule files."""
    return sorted(RULES.glob("*.rules.yml"))


def unit_test_files() -> list[Path]:
    """Return the promtool unit test files."""
    return sorted((RULES / "tests").glob("*.test.yml"))


def alerting_rules() -> list[dict[str, Any]]:
    """Return every alerting rule of every committed rule file."""
    rules = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            rules += [r for r in group["rules"] if "alert" in r]
    return rules


def alert_names() -> set[str]:
    """Return the names of every alert."""
    return {r["alert"] for r in alerting_rules()}


def run_generate(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m rules generate ARGS` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "rules", "generate", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
