"""The backtest replays Prometheus' own alerting: same firings as ALERTS, within one step.

Real Prometheus, the project's rules with short `for`/`keep_firing_for`/windows, twenty minutes
of backfilled history (promtool) and half a minute of live scraping of a scripted target,
evaluated every second. For a rule with `for`, one with `keep_firing_for`, a tiered alert and a
rate-based alert, the backtest's episodes over history plus the live window equal the ones
Prometheus wrote to ALERTS (pending and firing) and ALERTS_FOR_STATE, one evaluation step apart
at most (a scrape can land just before or just after an evaluation).
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rules.cli import main
from rules.promapi import Prometheus, Series
from tests.rules._prometheus import (
    ScriptedTarget,
    openmetrics,
    repo_thresholds,
    running_prometheus,
    write_rules,
)

pytestmark = pytest.mark.slow

STEP = 1.0
HISTORY = 1200.0  # seconds of backfilled history before the live part
LIVE_END = 27.0  # the live scenario is over (everything resolved) by then
ERROR_BASE = 100.0


def _between(t: float, *spans: tuple[float, float]) -> bool:
    return any(a <= t < b for a, b in spans)


def queue(t: float) -> float:
    # History: a two-minute backlog 15 minutes before the live part. Live: fires, stays
    # pending for less than `for`, fires again.
    if _between(t, (-900, -780), (2, 9), (11, 14), (17, 23)):
        return 5000
    return 10


def verify(t: float) -> float:
    # A failed check, a 2 s recovery inside keep_firing_for, failed again, then a lone failure.
    return 0 if _between(t, (3, 6), (8, 10), (17, 19)) else 1


def connections(t: float) -> float:
    if _between(t, (8, 14)):
        return 97  # critical and warning
    return 85 if _between(t, (2, 8), (14, 18)) else 50


def errors(t: float) -> float:
    # One error a minute in history; five a second from 4 s to 12 s live.
    if t < 0:
        return ERROR_BASE + math.floor((t + HISTORY) / 60) - HISTORY / 60
    return ERROR_BASE + 5 * max(0.0, min(t, 12) - 4)


SERIES = {
    'maintwatch_queue_jobs{connection="redis",queue="default",state="pending"}': queue,
    'maintwatch_backup_last_verify_success{backup="db"}': verify,
    'maintwatch_db_connections{database="app"}': connections,
    'maintwatch_db_max_connections{database="app"}': lambda t: 100,
    'maintwatch_log_messages_total{app="shop",level="error"}': errors,
}


def body(t: float) -> str:
    return "".join(f"{key} {fn(t):g}\n" for key, fn in SERIES.items())


def history(target: ScriptedTarget) -> str:
    scrape_labels = f'job="maintwatch",instance="127.0.0.1:{target.port}",'
    out: dict[str, list[tuple[float, float]]] = {}
    for key, fn in SERIES.items():
        name, labels = key.split("{", 1)
        times = [-HISTORY + 5 * i for i in range(int((HISTORY - 30) / 5))]
        out[f"{name}{{{scrape_labels}{labels}"] = [(target.started + t, fn(t)) for t in times]
    return openmetrics(out)


def thresholds() -> dict[str, Any]:
    doc = repo_thresholds()
    alerts = doc["alerts"]
    alerts["QueueBacklogHigh"]["for"] = "4s"
    alerts["BackupVerifyFailed"]["keep_firing_for"] = "5s"
    alerts["DatabaseConnectionsHigh"]["for"] = "3s"
    alerts["AppErrorRateHigh"].update({"for": "2s", "params": {"window": "10s"}})
    return doc


Span = tuple[float | None, float | None, float | None]  # active_at, fired_at, ended_at


def prometheus_episodes(
    prom: Prometheus, alert: str, since: float, at: float
) -> dict[str, list[Span]]:
    """Return per severity the episodes Prometheus wrote since `since`: runs of ALERTS samples."""
    span = f"{math.ceil(at - since) + 5}s"
    out: dict[str, list[Span]] = {}
    runs: dict[tuple, list[tuple[float, str]]] = {}
    for series in prom.query(f'ALERTS{{alertname="{alert}"}}[{span}]', at):
        labels = {k: v for k, v in series.labels.items() if k not in ("__name__", "alertstate")}
        key = tuple(sorted(labels.items()))
        runs.setdefault(key, []).extend((t, series.labels["alertstate"]) for t, _ in series.points)
    for key, samples in runs.items():
        samples.sort()
        episodes: list[list[tuple[float, str]]] = []
        for t, state in samples:
            if episodes and t - episodes[-1][-1][0] <= 1.5 * STEP:
                episodes[-1].append((t, state))
            else:
                episodes.append([(t, state)])
        severity = dict(key)["severity"]
        for ep in episodes:
            fired = next((t for t, s in ep if s == "firing"), None)
            out.setdefault(severity, []).append((ep[0][0], fired, ep[-1][0] + STEP))
    return out


def _ts(text: str | None) -> float | None:
    return None if text is None else datetime.fromisoformat(text).timestamp()


def backtest_episodes(
    url: str, rules: Path, alert: str, phase: float, start: float, end: float, capsys: Any
) -> dict[str, list[Span]]:
    args = ["backtest", "--prometheus.url", url, "--current", str(rules / "thresholds.yaml")]
    args += [
        "--start",
        f"{math.floor(start) + phase:.3f}",
        "--end",
        f"{math.floor(end) + phase:.3f}",
    ]
    args += ["--step", "1s", "--alert", alert, "--format", "json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    out: dict[str, list[Span]] = {}
    for item in doc["alerts"]:
        eps = item["current"]["episodes"]
        out[item["severity"]] = [
            (_ts(e["active_at"]), _ts(e["fired_at"]), _ts(e["ended_at"])) for e in eps
        ]
    return out


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= STEP + 0.002


def assert_same(alert: str, ours: dict[str, list[Span]], theirs: dict[str, list[Span]]) -> None:
    """Assert the same episodes per severity, each time at most one step apart."""
    assert set(ours) == set(theirs), (alert, ours, theirs)
    for severity, expected in theirs.items():
        got = ours[severity]
        assert len(got) == len(expected), (alert, severity, got, expected)
        for mine, prometheus in zip(got, expected, strict=True):
            close = [_close(a, b) for a, b in zip(mine, prometheus, strict=True)]
            assert all(close), (alert, severity, mine, prometheus)


def assert_for_state(alert: str, state: list[Series], ours: dict[str, list[Span]]) -> None:
    """ALERTS_FOR_STATE holds each episode's active_at, in whole seconds."""
    for series in state:
        starts = [e[0] or 0.0 for e in ours[series.labels["severity"]]]
        for _, value in series.points:
            assert any(abs(value - s) <= STEP + 1 for s in starts), (alert, value, starts)


def config(rules: Path, target: ScriptedTarget) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules / "*.rules.yml")],
        "scrape_configs": [
            {
                "job_name": "maintwatch",
                "static_configs": [{"targets": [f"127.0.0.1:{target.port}"]}],
            }
        ],
    }


ALERTS = ("QueueBacklogHigh", "BackupVerifyFailed", "DatabaseConnectionsHigh", "AppErrorRateHigh")


def test_backtest_matches_prometheus_alerts(tmp_path: Path, capsys: Any) -> None:
    target = ScriptedTarget(body)
    rules = write_rules(thresholds(), tmp_path / "rules")
    replayed = {}
    with (
        target.running(),
        running_prometheus(tmp_path, config(rules, target), history(target)) as url,
    ):
        started = time.time()
        # The live scenario starts once Prometheus evaluates, a second from now; the history
        # ended before Prometheus started, so the series run on without a gap or a reset.
        target.started = started + 1.0
        start, end = target.started - HISTORY, target.started + LIVE_END
        time.sleep(max(0.0, end + 2 - time.time()))
        prom, at = Prometheus(url), time.time()
        for alert in ALERTS:
            expected = prometheus_episodes(prom, alert, started, at)
            state = prom.query(f'ALERTS_FOR_STATE{{alertname="{alert}"}}[60s]', at)
            assert state, f"{alert}: Prometheus never had it pending or firing"
            # Evaluate at the rule group's own instants: Prometheus offsets each group.
            phase = round(state[0].points[0][0] % STEP, 3)
            got = backtest_episodes(url, rules, alert, phase, start, end, capsys)
            live = {s: [e for e in eps if (e[0] or 0) >= started] for s, eps in got.items()}
            live = {s: eps for s, eps in live.items() if eps}
            assert_same(alert, live, expected)
            assert_for_state(alert, state, live)
            replayed[alert] = got
    # The backfilled backlog fired in history too, where Prometheus never evaluated.
    backlog = replayed["QueueBacklogHigh"]["warning"]
    past = [e for e in backlog if (e[0] or 0) < target.started - 600]
    assert len(past) == 1
    assert past[0][1] is not None
    assert sum(1 for e in backlog if e[1] is not None) == 3
    assert sum(1 for e in replayed["BackupVerifyFailed"]["critical"] if e[1]) == 2
