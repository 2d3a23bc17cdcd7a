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


def alert_expr(name: str, kind: str = "alert") -> str:
    """Return the expression of the first rule named `name` (an alert, or a `record`)."""
    for path in sorted(RULES.glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]:
            for rule in group["rules"]:
                if rule.get(kind) == name:
                    return str(rule["expr"])
    raise LookupError(name)


def _labels(labels: dict[str, str]) -> str:
    return _plain({**labels, **SCRAPE})


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
    _run(promtool, test, alert)


def expect_record(
    promtool: str, snapshots: list[Samples], record: str, labels: dict[str, str], value: float
) -> None:
    """Assert a recording rule's expression over successive scrapes gives one sample.

    Each snapshot stands for five one-minute scrapes; the expression is evaluated at 6m, when
    its 5m window holds the first snapshot's last samples and the second's first ones.
    """
    scrapes = [_by_series(snap) for snap in snapshots]
    series = [
        {
            "series": name + _labels(dict(pairs)),
            "values": " ".join(
                " ".join([repr(scrape[(name, pairs)]) if (name, pairs) in scrape else "_"] * 5)
                for scrape in scrapes
            ),
        }
        for name, pairs in sorted({key for scrape in scrapes for key in scrape})
    ]
    test = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        # Rounded: a ratio of rates is rarely the exact float of its fraction.
                        "expr": f"round({alert_expr(record, 'record')}, 0.0001)",
                        "eval_time": "6m",
                        "exp_samples": [{"labels": _plain(labels), "value": value}],
                    }
                ],
            }
        ],
    }
    _run(promtool, test, record)


Key = tuple[str, tuple[tuple[str, str], ...]]


def _by_series(samples: Samples) -> dict[Key, float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): float(s.value)
        for f in samples.families
        for s in f.samples
    }


def _plain(labels: dict[str, str]) -> str:
    pairs = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    return f"{{{pairs}}}"


def _run(promtool: str, test: dict[str, object], name: str) -> None:
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
    assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
