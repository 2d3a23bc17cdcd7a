"""Evaluate a generated alert's expression with promtool over a collector's real samples."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import yaml

from tests.exporter.conftest import Samples

RULES = Path(__file__).resolve().parents[2] / "rules"
SCRAPE = {"job": "maintwatch", "instance": "host1"}
EVAL_AT = 600.0  # promtool's time() at the evaluation: 10m after its epoch


def alert_expr(alert: str) -> str:
    """Return the expression of the first rule named `alert` in the generated rule files."""
    for path in sorted(RULES.glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == alert:
                    return str(rule["expr"])
    raise LookupError(alert)


def _labels(labels: dict[str, str]) -> str:
    pairs = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted({**labels, **SCRAPE}.items()))
    return f"{{{pairs}}}"


def expect_alert(
    promtool: str,
    samples: Samples,
    alert: str,
    firing: list[dict[str, str]],
    now: float | None = None,
) -> None:
    """Assert the alert's expression yields exactly the label sets `firing` (job, instance added).

    The samples stand still for ten minutes, as if scraped every minute, and the expression is
    evaluated at the end; values are ignored (`* 0 + 1`), so `for` durations do not matter.
    With `now`, `*_timestamp_seconds` values are moved so that promtool's `time()` is `now`.
    """
    shift = EVAL_AT - now if now is not None else 0.0

    def value(name: str, raw: float) -> str:
        return repr(float(raw) + shift if name.endswith("_timestamp_seconds") else float(raw))

    series = [
        {"series": s.name + _labels(dict(s.labels)), "values": f"{value(s.name, s.value)}x10"}
        for f in samples.families
        for s in f.samples
    ]
    test = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": f"({alert_expr(alert)}) * 0 + 1",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": _labels(want), "value": 1} for want in firing],
                    }
                ],
            }
        ],
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.test.yml"
        path.write_text(yaml.safe_dump(test, sort_keys=False), encoding="utf-8")
        result = subprocess.run(
            [promtool, "test", "rules", str(path)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert result.returncode == 0, f"{alert}: {result.stdout}{result.stderr}"
