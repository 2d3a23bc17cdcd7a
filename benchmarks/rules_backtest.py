#!/usr/bin/env python3
"""Backtest the whole rule set over 14 days of the demo's series at a 1 m step.

History is grown from the demo exporter's series (`data/demo_series.prom`): backlog spikes,
error bursts, missed and failed backups, maintenance windows, brief exporter outages; one
sample a minute, backfilled with `promtool tsdb create-blocks-from openmetrics` into a fresh
Prometheus. Then `python -m rules backtest` runs over the range (current thresholds against a
proposal that changes three alerts) several times; we report the median wall time and what it
cost Prometheus: range queries, its CPU seconds and its engine's evaluation time. The target:
under one minute.

    .venv/bin/python benchmarks/rules_backtest.py [--days 14] [--runs 3] [--json out.json]
    .venv/bin/python benchmarks/rules_backtest.py --walkthrough DIR  # + the docs' table, pictures
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import common
import yaml

SNAPSHOT = Path(__file__).resolve().parent / "data" / "demo_series.prom"
SCRAPE = 'job="maintwatch",instance="127.0.0.1:9839"'
STEP = 60
BLOCK = 7200  # promtool writes one block per 2 hours
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")


def snapshot() -> list[tuple[str, str, float]]:
    """Return (name, inner labels, value) of each demo series."""
    out = []
    for line in SNAPSHOT.read_text().splitlines():
        match = _LINE.match(line)
        if match:
            out.append((match[1], (match[2] or "{}")[1:-1], float(match[3])))
    return out


def windows(rng: random.Random, n: int, per_day: float, lo: int, hi: int) -> list[tuple[int, int]]:
    """Return random (start, end) minute windows, about `per_day` a day."""
    count = max(1, round(n / 1440 * per_day))
    starts = sorted(rng.randrange(n) for _ in range(count))
    return [(s, s + rng.randint(lo, hi)) for s in starts]


def inside(i: int, spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """Return the window holding minute i, if any."""
    return next((w for w in spans if w[0] <= i < w[1]), None)


def path(name: str, labels: str, value: float, n: int, start: float, rng: random.Random,
         shared: dict[str, Any]) -> list[float]:  # fmt: skip
    """Return one series' values, minute by minute, shaped by what the metric means."""
    times = [start + i * STEP for i in range(n)]
    if name == "maintwatch_queue_jobs" and 'state="pending"' in labels:
        spikes = windows(rng, n, 1.5, 5, 50)
        heights = {w: rng.uniform(600, 4000) for w in spikes}
        return [heights[w] if (w := inside(i, spikes)) else rng.uniform(0, 60) for i in range(n)]
    if name == "maintwatch_log_messages_total":
        bursts = windows(rng, n, 0.5, 3, 30) if "error" in labels else []
        total, out = value, []
        for i in range(n):
            total += rng.choice((0, 0, 1)) + (rng.randint(10, 40) if inside(i, bursts) else 0)
            out.append(total)
        return out
    if name == "maintwatch_backup_last_timestamp_seconds":
        period = 86400.0
        runs = [start - period + k * period + rng.uniform(0, 1800) for k in range(n // 1440 + 2)]
        runs = [r for k, r in enumerate(runs) if k == 0 or rng.random() > 0.12]  # missed nights
        return [
            max(r for r in runs if r <= t) if any(r <= t for r in runs) else runs[0] for t in times
        ]
    if name == "maintwatch_backup_last_verify_success":
        bad = windows(rng, n, 0.15, 30, 180)
        return [0.0 if inside(i, bad) else 1.0 for i in range(n)]
    if name in (
        "maintwatch_app_maintenance_mode",
        "maintwatch_app_maintenance_since_timestamp_seconds",
    ):
        spans = shared.setdefault("maintenance", windows(rng, n, 0.4, 5, 120))
        if name == "maintwatch_app_maintenance_mode":
            return [1.0 if inside(i, spans) else 0.0 for i in range(n)]
        return [start + w[0] * STEP if (w := inside(i, spans)) else 0.0 for i in range(n)]
    if name == "maintwatch_queue_oldest_job_timestamp_seconds":
        return [t - rng.uniform(5, 400) for t in times]
    if name.endswith("_not_after_timestamp_seconds"):
        # Renewed 30 days ahead whenever it gets within 20 days of expiry.
        out, expiry = [], value
        for t in times:
            if expiry - t < 20 * 86400 and rng.random() < 0.002:
                expiry = t + 30 * 86400
            out.append(expiry)
        return out
    if name == "maintwatch_collector_up":
        down = windows(rng, n, 0.2, 1, 20)
        return [0.0 if inside(i, down) else 1.0 for i in range(n)]
    return [value] * n


def history(days: float, end: float, seed: int = 7) -> tuple[dict[int, list[str]], int]:
    """Return OpenMetrics lines of the history ending at `end` per 2-hour block, and a count.

    promtool rereads its whole input for every 2-hour block it writes; one file per block keeps
    a 14-day backfill linear instead of quadratic.
    """
    rng = random.Random(seed)
    n = int(days * 1440)
    start = end - n * STEP
    shared: dict[str, Any] = {}
    blocks: dict[int, list[str]] = {}
    series = sorted(snapshot(), key=lambda s: s[0])
    series.append(("up", "", 1.0))
    for name, labels, value in series:
        values = path(name, labels, value, n, start, rng, shared)
        if name == "up":
            down = windows(rng, n, 0.1, 2, 12)
            values = [0.0 if inside(i, down) else 1.0 for i in range(n)]
        inner = f"{SCRAPE},{labels}" if labels else SCRAPE
        for i, v in enumerate(values):
            ts = start + i * STEP
            blocks.setdefault(int(ts // BLOCK), []).append(f"{name}{{{inner}}} {v:.12g} {ts:.0f}")
    return blocks, n * len(series)


def start_prometheus(
    work: Path, started: list[common.Service], blocks: dict[int, list[str]]
) -> str:
    """Backfill the history into a fresh data directory and start Prometheus; return its URL."""
    binary, promtool = common.tool("prometheus"), common.tool("promtool")
    if binary is None or promtool is None:
        raise SystemExit("needs Debian's prometheus package (prometheus, promtool)")
    data = work / "data"
    source = work / "block.om"
    for lines in blocks.values():
        source.write_text("\n".join(lines) + "\n# EOF\n")
        common.run_checked([promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
                            str(source), str(data)], timeout=900)  # fmt: skip
    config = work / "prometheus.yml"
    config.write_text(
        yaml.safe_dump({"global": {"scrape_interval": "1m", "evaluation_interval": "1m"}})
    )
    port = common.free_port()
    prom = common.Service("prometheus", [binary, f"--config.file={config}",
                          f"--storage.tsdb.path={data}", f"--web.listen-address=127.0.0.1:{port}",
                          "--storage.tsdb.retention.time=60d"], work)  # fmt: skip
    started.append(prom.start())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        prom.check_alive()
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return url
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"prometheus not ready:\n{prom.tail()}")


def engine(url: str) -> dict[str, float]:
    """Return Prometheus' own counters that measure query load."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as answer:  # noqa: S310
        text = answer.read().decode()
    wanted = {
        "process_cpu_seconds_total": "cpu_s",
        'prometheus_http_requests_total{code="200",handler="/api/v1/query_range"}': "range_queries",
    }
    out = dict.fromkeys(wanted.values(), 0.0)
    for line in text.splitlines():
        for key, short in wanted.items():
            if line.startswith(key + " "):
                out[short] = float(line.split()[-1])
        if line.startswith('prometheus_engine_query_duration_seconds_sum{slice="inner_eval"}'):
            out["inner_eval_s"] = float(line.split()[-1])
    return out


def proposal(work: Path) -> Path:
    """Return a thresholds file changing three alerts: backlog, error rate, backup age."""
    doc = yaml.safe_load((common.ROOT / "rules" / "thresholds.yaml").read_text())
    doc["alerts"]["QueueBacklogHigh"].update({"threshold": 2500, "for": "5m"})
    doc["alerts"]["AppErrorRateHigh"]["threshold"] = 20
    doc["alerts"]["BackupTooOld"]["tiers"][1]["threshold"] = 1.5
    out = work / "proposed.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def backtest(
    url: str, start: float, end: float, proposed: Path, extra: list[str]
) -> tuple[float, str]:
    """Run `python -m rules backtest` once; return (wall seconds, stdout)."""
    argv = [str(common.VENV_BIN / "python"), "-m", "rules", "backtest", "--prometheus.url", url,
            "--start", f"{start:.0f}", "--end", f"{end:.0f}", "--step", "1m",
            "--thresholds", str(proposed), *extra]  # fmt: skip
    began = time.perf_counter()
    done = subprocess.run(
        argv, cwd=common.ROOT, capture_output=True, text=True, check=False, timeout=900
    )
    wall = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"backtest exited {done.returncode}: {done.stderr[-2000:]}")
    return wall, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=14)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--walkthrough", type=Path, default=None,
                        help="also write the table and pictures here")  # fmt: skip
    args = parser.parse_args()
    end = math.floor(time.time() / 3600) * 3600 - 3600
    made = time.perf_counter()
    blocks, samples = history(args.days, end)
    with tempfile.TemporaryDirectory(prefix="mw-backtest-") as tmp, common.services() as started:
        work = Path(tmp)
        url = start_prometheus(work, started, blocks)
        del blocks
        prepared = time.perf_counter() - made
        proposed = proposal(work)
        start = end - args.days * 86400
        runs = []
        for _ in range(args.runs):
            before = engine(url)
            wall, out = backtest(url, start, end, proposed, ["--format", "json"])
            after = engine(url)
            doc = json.loads(out)
            runs.append({"wall_s": wall, "queries": doc["queries"],
                         **{k: after.get(k, 0) - before.get(k, 0) for k in after}})  # fmt: skip
        result = {
            "days": args.days,
            "step_s": STEP,
            "series": len(snapshot()) + 1,
            "history_samples": samples,
            "prepare_s": round(prepared, 1),
            "alert_tiers": len(doc["alerts"]),
            "changed": sum(1 for a in doc["alerts"] if a["changed"]),
            "runs": runs,
            "median_wall_s": common.median([r["wall_s"] for r in runs]),
            "median_prometheus_cpu_s": common.median([r["cpu_s"] for r in runs]),
            "median_query_s": common.median([r.get("inner_eval_s", 0.0) for r in runs]),
            "machine": common.machine(),
        }
        if args.walkthrough is not None:
            args.walkthrough.mkdir(parents=True, exist_ok=True)
            _, table = backtest(url, start, end, proposed, ["--plots", str(args.walkthrough)])
            (args.walkthrough / "table.txt").write_text(table)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
