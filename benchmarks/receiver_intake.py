"""Webhook intake: the receiver (durable SQLite, WAL + synchronous=FULL) vs a bare JSON handler.

Both servers run in their own process on this machine; one aiohttp client sends the same
bounded number of requests with fixed concurrency to each, alternating (the order flips every
round so drift in the machine's load hits both alike), after one uncounted warm-up round each.
Every request is a new alert group, so each one opens an incident (the worst-case write).
Also printed: each server's CPU per request, and the disk's floor: a durable commit and an
`os.fsync` of a WAL-sized write, with the throughput ratio that floor alone allows (every
request waits for at least one fsync'd commit, so at concurrency c the receiver cannot pass
c / commit latency, however little CPU it uses).

    .venv/bin/python benchmarks/receiver_intake.py [--requests 2000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import tempfile
import time
from typing import Any

import aiohttp
import common
import structlog
from aiohttp import web


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _body(index: int) -> bytes:
    alerts = [
        {
            "status": "firing",
            "labels": {"alertname": "BenchAlert", "severity": "warning", "n": str(index), "i": i},
            "annotations": {"summary": "benchmark alert"},
            "startsAt": "2026-11-22T12:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prom/graph",
            "fingerprint": f"{index:08x}{i}",
        }
        for i in ("a", "b")
    ]
    return json.dumps(
        {
            "receiver": "hook",
            "status": "firing",
            "alerts": alerts,
            "groupLabels": {"alertname": "BenchAlert", "n": str(index)},
            "commonLabels": {"alertname": "BenchAlert", "severity": "warning"},
            "commonAnnotations": {},
            "externalURL": "http://am",
            "version": "4",
            "groupKey": f'{{}}:{{n="{index}"}}',
            "truncatedAlerts": 0,
        }
    ).encode()


def _serve_bare(port: int) -> None:
    async def handler(request: web.Request) -> web.Response:
        json.loads(await request.read())
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhooks/alertmanager", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _serve_receiver(port: int, directory: str) -> None:
    from maintwatch import logs
    from receiver.app import make_app
    from receiver.config import load_config_text

    logs.configure("warning")
    config = load_config_text(
        f"store: {{type: sqlite, path: {directory}/bench.db}}\nwebhook: {{auth: none}}\n"
    )
    app = make_app(config, structlog.get_logger("bench"))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def _ready(http: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with http.post(url, data=b"{}") as response:
                await response.read()
                return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


async def _load(url: str, start: int, requests: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    queue = iter(range(start, start + requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        await _ready(http, url)

        async def client() -> None:
            for index in queue:
                data = _body(index)
                began = time.perf_counter()
                async with http.post(url, data=data) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "rps": requests / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def commit_latency_ms(directory: str, commits: int = 200) -> float:
    """Return this disk's cost of one durable SQLite commit (WAL, synchronous=FULL)."""
    import sqlite3

    db = sqlite3.connect(f"{directory}/fsync.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (x INTEGER)")
    began = time.perf_counter()
    for i in range(commits):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (i,))
        db.execute("COMMIT")
    db.close()
    return (time.perf_counter() - began) / commits * 1000


def fsync_ms(directory: str, size: int = 64 * 1024, syncs: int = 200) -> float:
    """Return the median time of `os.fsync` after a WAL-sized append (about one intake batch)."""
    times = []
    fd = os.open(f"{directory}/fsync.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for _ in range(syncs):
            os.write(fd, b"\0" * size)
            began = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - began)
    finally:
        os.close(fd)
    return statistics.median(times) * 1000


def _round(url: str, pid: int, start: int, args: argparse.Namespace) -> dict[str, float]:
    cpu = common.proc_cpu_seconds(pid)
    result = asyncio.run(_load(url, start, args.requests, args.concurrency))
    result["cpu_us"] = (common.proc_cpu_seconds(pid) - cpu) / args.requests * 1e6
    return result


def _measure(args: argparse.Namespace, directory: str) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {"bare": [], "receiver": []}
    ports = {"bare": free_port(), "receiver": free_port()}
    servers = {
        "bare": multiprocessing.Process(target=_serve_bare, args=(ports["bare"],)),
        "receiver": multiprocessing.Process(
            target=_serve_receiver, args=(ports["receiver"], directory)
        ),
    }
    for process in servers.values():
        process.start()
    urls = {name: f"http://127.0.0.1:{port}/webhooks/alertmanager" for name, port in ports.items()}
    try:
        offset = 0
        for url in urls.values():  # warm-up: imports, first pages of the database
            asyncio.run(_load(url, offset, args.warmup, args.concurrency))
            offset += args.warmup
        for index in range(args.rounds):
            order = ("bare", "receiver") if index % 2 == 0 else ("receiver", "bare")
            for name in order:
                pid = servers[name].pid
                assert pid is not None
                results[name].append(_round(urls[name], pid, offset, args))
                offset += args.requests
    finally:
        for process in servers.values():
            process.terminate()
            process.join()
    return results


def main() -> None:
    """Run the comparison and print medians and the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=300, help="uncounted requests per server")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        results = _measure(args, directory)
    summary: dict[str, Any] = {}
    for name, runs in results.items():
        summary[name] = {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}
    ratio = summary["receiver"]["rps"] / summary["bare"]["rps"]
    with tempfile.TemporaryDirectory() as directory:
        commit = commit_latency_ms(directory)
        sync = fsync_ms(directory)
    ceiling = args.concurrency / (commit / 1000) / summary["bare"]["rps"]
    print(
        f"requests={args.requests} concurrency={args.concurrency} rounds={args.rounds} "
        f"durable sqlite commit on this disk: {commit:.2f} ms"
    )
    for name, values in summary.items():
        print(
            f"{name:9s} {values['rps']:8.0f} req/s  p50 {values['p50_ms']:6.2f} ms  "
            f"p99 {values['p99_ms']:6.2f} ms  server CPU {values['cpu_us']:5.0f} us/request"
        )
    print(
        f"receiver/bare throughput ratio: {ratio:.2f} (target >= 0.50); "
        f"receiver p99 {summary['receiver']['p99_ms']:.2f} ms (target < 10 ms)"
    )
    print(
        f"disk floor: os.fsync of 64 KiB {sync:.2f} ms (median); one commit per request at "
        f"concurrency {args.concurrency} caps the ratio at {ceiling:.2f} even with zero CPU"
    )


if __name__ == "__main__":
    main()
