"""Soak: the real `maintwatch-receiver` under 5x a busy Alertmanager for a long time.

A busy Alertmanager: 1 000 active alert groups, group_interval 5m (3.3 webhooks/s). This sends
five times that: every group repeats every `--group-interval` (default 60s); each group fires
for 1-10 intervals with 1-5 alerts, then resolves, and a new group takes its place. The
receiver (SQLite store, one file channel) runs as its own process.

Checked at the end: every group incarnation paged exactly once when it fired and once when it
resolved (no lost incident, no duplicate page), the outbox drained to 0, and RSS / open fds
did not grow (first vs last fifth of the run).

    .venv/bin/python benchmarks/receiver_soak.py [--duration 30m] [--groups 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from maintwatch.durations import parse_duration

BINARY = Path(sys.executable).with_name("maintwatch-receiver")
SAMPLE_EVERY = 10.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def iso(epoch: float) -> str:
    """Format epoch seconds like Alertmanager."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


@dataclass
class Group:
    """One alert group incarnation: its alerts, when it started, when it resolves."""

    key: str
    alerts: int
    started: float
    resolves_after: int  # sends before the resolving one
    sent: int = 0

    def body(self, resolved: bool) -> bytes:
        """Return the webhook body for this group's next send."""
        status = "resolved" if resolved else "firing"
        alerts = [
            {
                "status": status,
                "labels": {"alertname": "Soak", "severity": "critical", "g": self.key, "i": str(i)},
                "annotations": {"summary": f"soak group {self.key}"},
                "startsAt": iso(self.started),
                "endsAt": iso(time.time()) if resolved else "0001-01-01T00:00:00Z",
                "generatorURL": "http://prom/graph",
                "fingerprint": f"{self.key}-{i}",
            }
            for i in range(self.alerts)
        ]
        return json.dumps(
            {
                "receiver": "soak",
                "status": status,
                "alerts": alerts,
                "groupLabels": {"g": self.key},
                "commonLabels": {"alertname": "Soak", "severity": "critical", "g": self.key},
                "commonAnnotations": {},
                "externalURL": "http://am",
                "version": "4",
                "groupKey": f'{{}}:{{g="{self.key}"}}',
                "truncatedAlerts": 0,
            }
        ).encode()


@dataclass
class Tally:
    """What the sender did and saw."""

    incarnations: int = 0
    resolved: int = 0
    webhooks: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)


def proc_sample(pid: int, db: Path) -> dict[str, float]:
    """Return RSS (MiB), open fds and outbox depth of the receiver now."""
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_mb": rss, "fds": fds, "outbox": outbox_depth(db)}


def outbox_depth(db: Path) -> int:
    """Return pending + sending outbox rows (read-only, from this process)."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending')"
        ).fetchone()
    return int(row[0])


async def post(http: aiohttp.ClientSession, url: str, body: bytes, tally: Tally) -> None:
    """POST until answered 200 (Alertmanager retries 5xx and connection errors)."""
    for _ in range(50):
        started = time.perf_counter()
        try:
            async with http.post(url, data=body) as response:
                await response.read()
                if response.status == 200:
                    tally.latencies.append(time.perf_counter() - started)
                    tally.webhooks += 1
                    return
                tally.errors[f"http_{response.status}"] += 1
        except aiohttp.ClientError as exc:
            tally.errors[type(exc).__name__] += 1
        await asyncio.sleep(0.5)
    raise RuntimeError("webhook never accepted")


async def drive(args: argparse.Namespace, url: str, pid: int, db: Path, tally: Tally) -> None:
    """Send webhooks for `duration`, sampling the receiver every SAMPLE_EVERY seconds."""
    rng = random.Random(args.seed)
    limit = asyncio.Semaphore(32)
    serial = 0
    now = time.time()

    def new_group(start: float) -> tuple[float, Group]:
        nonlocal serial
        serial += 1
        group = Group(f"s{serial}", rng.randint(1, 5), start, rng.randint(1, 10))
        return start + rng.uniform(0, args.group_interval), group

    schedule = [new_group(now - 60) for _ in range(args.groups)]
    end, next_sample = now + args.duration, now
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession() as http:
        while time.time() < end:
            now = time.time()
            if now >= next_sample:
                tally.samples.append({"t": now, **proc_sample(pid, db)})
                next_sample += SAMPLE_EVERY
            for index, (due, group) in enumerate(schedule):
                if due > now:
                    continue
                resolving = group.sent >= group.resolves_after
                tally.incarnations += group.sent == 0
                pending.add(asyncio.create_task(send(http, url, group, resolving, limit, tally)))
                group.sent += 1
                if resolving:
                    tally.resolved += 1
                    schedule[index] = new_group(now)
                else:
                    schedule[index] = (due + args.group_interval, group)
            pending = {t for t in pending if not t.done()}
            await asyncio.sleep(0.05)
        await asyncio.gather(*pending)


async def send(
    http: aiohttp.ClientSession,
    url: str,
    group: Group,
    resolving: bool,
    limit: asyncio.Semaphore,
    tally: Tally,
) -> None:
    """Send one webhook under the concurrency limit."""
    async with limit:
        await post(http, url, group.body(resolving), tally)


def check_pages(pages: Path, tally: Tally) -> dict[str, Any]:
    """Count pages per incident from the file channel; no duplicates, none missing."""
    lines, unreadable = [], 0
    for raw in pages.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            unreadable += 1  # counted and failed below, so a bad line never hides the run
    ids = Counter(line["id"] for line in lines)
    kinds = Counter((line["common_labels"]["g"], line["kind"]) for line in lines)
    firing = sum(1 for (_, kind) in kinds if kind == "firing")
    resolved = sum(1 for (_, kind) in kinds if kind == "resolved")
    return {
        "messages": len(lines),
        "unreadable_lines": unreadable,
        "duplicate_ids": sum(c - 1 for c in ids.values()),
        "incidents_paged": firing,
        "expected_incidents": tally.incarnations,
        "resolved_pages": resolved,
        "expected_resolved": tally.resolved,
        "duplicate_pages": sum(c - 1 for c in kinds.values()),
    }


def flat(samples: list[dict[str, float]], key: str) -> tuple[float, float]:
    """Return the median of `key` over the first and the last fifth of the samples."""
    fifth = max(1, len(samples) // 5)
    head = [s[key] for s in samples[1 : fifth + 1]] or [samples[0][key]]
    return statistics.median(head), statistics.median([s[key] for s in samples[-fifth:]])


def write_config(folder: Path, port: int) -> Path:
    """Write the receiver config used by the soak."""
    config = folder / "receiver.yml"
    config.write_text(
        f"listen: 127.0.0.1:{port}\n"
        f"store: {{type: sqlite, path: {folder / 'soak.db'}}}\n"
        "webhook: {auth: none}\n"  # measured like the earlier runs: no auth cost per request
        f"channels: [{{name: pages, type: file, path: {folder / 'pages.jsonl'}}}]\n"
        "default_route: {channels: [pages]}\n"
        "delivery: {poll_interval: 200ms}\n"
    )
    return config


async def wait_ready(url: str) -> None:
    """Poll /-/ready for up to 30 s."""
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{url}/-/ready") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready")


async def drained(db: Path, timeout: float = 120) -> float:
    """Wait until the outbox is empty; return how long that took."""
    started = time.monotonic()
    while outbox_depth(db) and time.monotonic() - started < timeout:
        await asyncio.sleep(0.2)
    return time.monotonic() - started


def report(args: argparse.Namespace, tally: Tally, pages: dict[str, Any], drain: float) -> bool:
    """Print the sample table and the summary; return whether every check passed."""
    print(f"{'minute':>6} {'rss_mb':>8} {'fds':>5} {'outbox':>7}")
    start = tally.samples[0]["t"]
    for sample in tally.samples[:: max(1, int(60 / SAMPLE_EVERY))]:
        minute = (sample["t"] - start) / 60
        print(f"{minute:6.1f} {sample['rss_mb']:8.1f} {sample['fds']:5.0f} {sample['outbox']:7.0f}")
    lat = sorted(tally.latencies)
    rss, fds = flat(tally.samples, "rss_mb"), flat(tally.samples, "fds")
    rate = tally.webhooks / args.duration
    print(
        f"duration {args.duration:.0f}s, {tally.webhooks} webhooks ({rate:.1f}/s), "
        f"{tally.incarnations} incidents, {tally.resolved} resolved; retries: {dict(tally.errors)}"
    )
    print(
        f"webhook latency p50 {lat[len(lat) // 2] * 1000:.1f} ms, "
        f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms"
    )
    print(
        f"RSS first/last fifth median {rss[0]:.1f} / {rss[1]:.1f} MiB; "
        f"fds {fds[0]:.0f} / {fds[1]:.0f}; outbox drained {drain:.1f}s after the last webhook"
    )
    print("pages:", json.dumps(pages))
    ok = (
        pages["unreadable_lines"] == 0
        and pages["duplicate_ids"] == 0
        and pages["duplicate_pages"] == 0
        and pages["incidents_paged"] == pages["expected_incidents"]
        and pages["resolved_pages"] == pages["expected_resolved"]
        and rss[1] <= rss[0] * 1.2 + 5
        and fds[1] <= fds[0] + 5
    )
    print("RESULT:", "ok" if ok else "FAILED")
    return ok


async def main(args: argparse.Namespace) -> int:
    """Run the soak against a fresh receiver process."""
    with tempfile.TemporaryDirectory(prefix="mw-soak-") as tmp:
        folder, port = Path(tmp), free_port()
        config = write_config(folder, port)
        with (folder / "receiver.log").open("wb") as log:
            process = subprocess.Popen(
                [str(BINARY), f"--config.file={config}", "--log.level=warn"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        url, db, tally = f"http://127.0.0.1:{port}", folder / "soak.db", Tally()
        try:
            await wait_ready(url)
            await drive(args, f"{url}/webhooks/alertmanager", process.pid, db, tally)
            drain = await drained(db)
            tally.samples.append({"t": time.time(), **proc_sample(process.pid, db)})
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        return 0 if report(args, tally, check_pages(folder / "pages.jsonl", tally), drain) else 1


def parse_args() -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=parse_duration, default=1800.0)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--group-interval", type=parse_duration, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
