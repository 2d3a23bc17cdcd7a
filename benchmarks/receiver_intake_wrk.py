"""Webhook intake under `wrk`: the real receiver vs a bare aiohttp JSON handler, same run.

For each setup (SQLite with the inbox file, SQLite applied in the request, PostgreSQL with the
inbox table, PostgreSQL applied in the request) and each connection count, `wrk` loads the
bare handler, the same handler on uvloop (the receiver's loop) and the receiver in turn (the
order flips every round), each for `--seconds`; every request is a new alert group (a new
incident, the worst-case write), built by a Lua script. Printed: the medians over the rounds of
requests/s and p99, and the receiver / bare throughput ratios. Then the time from sending a
webhook to the first SMS call at a local Twilio stand-in, per setup (medians of a few).

    .venv/bin/python benchmarks/receiver_intake_wrk.py [--rounds 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from common import VENV_BIN, free_port, median
from delivery_lanes import Endpoints, body, post, serve
from receiver_soak import wait_ready

WRK = "/usr/bin/wrk"
HERE = Path(__file__).resolve().parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

# A new group per request: the prefix keeps groups distinct across rounds and wrk threads.
LUA = r"""
local counter = 0
local prefix = "x"
local template = [[{"receiver":"hook","status":"firing","alerts":[
{"status":"firing","labels":{"alertname":"BenchAlert","severity":"warning","n":"%s"},
"annotations":{"summary":"benchmark alert"},"startsAt":"2026-11-22T12:00:00Z",
"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prom/graph","fingerprint":"%s"}],
"groupLabels":{"alertname":"BenchAlert","n":"%s"},
"commonLabels":{"alertname":"BenchAlert","severity":"warning"},"commonAnnotations":{},
"externalURL":"http://am","version":"4","groupKey":"{}:{n=\"%s\"}","truncatedAlerts":0}]]
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  prefix = (args[1] or "x") .. "-" .. tostring(tid)
end
function request()
  counter = counter + 1
  local n = prefix .. "-" .. counter
  local b = string.format(template, n, n, n, n)
  return wrk.format("POST", "/webhooks/alertmanager",
    {["Content-Type"] = "application/json"}, b)
end
function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format('WRK {"requests": %d, "seconds": %f, "p99_ms": %f, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99) / 1e3, errors))
end
"""

BARE = """
import json, sys
from aiohttp import web
if sys.argv[2:] == ["uvloop"]:  # the receiver's own loop (maintwatch.loop)
    import uvloop
    uvloop.install()
async def handler(request):
    json.loads(await request.read())
    return web.json_response({"status": "ok"})
async def ready(request):
    return web.Response(text="ok")
app = web.Application()
app.router.add_post("/webhooks/alertmanager", handler)
app.router.add_get("/-/ready", ready)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def wrk(url: str, connections: int, seconds: int, script: Path) -> dict[str, float]:
    """Run wrk once; return requests/s and p99 in ms."""
    argv = [WRK, f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    argv += ["-s", str(script), url + "/webhooks/alertmanager", "--", uuid.uuid4().hex[:8]]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr}{out.stdout}")
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRK "))
    found = json.loads(line[4:])
    if found["errors"]:
        raise RuntimeError(f"wrk saw {found['errors']} errors against {url}:\n{out.stdout}")
    return {"rps": found["requests"] / found["seconds"], "p99_ms": found["p99_ms"]}


@contextmanager
def process(argv: list[str]) -> Iterator[None]:
    """Run a server process for the block."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=60)


@contextmanager
def postgres_db() -> Iterator[str]:
    """Create a scratch database; yield its DSN."""
    name = f"mw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def receiver_config(work: Path, store: str, mode: str, extra: str = "") -> Path:
    """Write a receiver config; return its path."""
    path = work / f"receiver-{uuid.uuid4().hex[:6]}.yml"
    path.write_text(
        f"store: {store}\nwebhook: {{auth: none}}\nintake: {{mode: {mode}}}\n"
        "retention: {enabled: false}\n" + extra
    )
    return path


def receiver_argv(config: Path, port: int) -> list[str]:
    """Return the command line of a real receiver."""
    return [
        str(VENV_BIN / "maintwatch-receiver"),
        f"--config.file={config}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warning",
    ]


def load_pair(
    setup: str, config: Path, connections: list[int], rounds: int, seconds: int, lua: Path
) -> list[dict[str, Any]]:
    """Load the bare handler and the receiver alternately; return one row per connection count."""
    bare_port, uv_port, rx_port = free_port(), free_port(), free_port()
    rows = []
    bare = [sys.executable, "-c", BARE, str(bare_port)]
    bare_uvloop = [sys.executable, "-c", BARE, str(uv_port), "uvloop"]
    with process(bare), process(bare_uvloop), process(receiver_argv(config, rx_port)):
        urls = {
            "bare": f"http://127.0.0.1:{bare_port}",
            "bare_uvloop": f"http://127.0.0.1:{uv_port}",
            "receiver": f"http://127.0.0.1:{rx_port}",
        }
        for url in urls.values():
            asyncio.run(wait_ready(url))
            wrk(url, 4, 2, lua)  # warm-up, uncounted
        for c in connections:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
            for index in range(rounds):
                order = list(urls) if index % 2 == 0 else list(reversed(urls))
                for name in order:
                    runs[name].append(wrk(urls[name], c, seconds, lua))
            row = {"setup": setup, "connections": c}
            for name, found in runs.items():
                row[f"{name}_rps"] = median([r["rps"] for r in found])
                row[f"{name}_p99_ms"] = median([r["p99_ms"] for r in found])
            for key, base in (("ratio", "bare"), ("ratio_uvloop", "bare_uvloop")):
                row[key] = median(
                    [r["rps"] / b["rps"] for r, b in zip(runs["receiver"], runs[base], strict=True)]
                )
            rows.append(row)
            print(_row_text(row), flush=True)
    return rows


def _row_text(row: dict[str, Any]) -> str:
    return (
        f"{row['setup']:<16} c{row['connections']:<3} bare {row['bare_rps']:7.0f}/s "
        f"p99 {row['bare_p99_ms']:5.1f} ms | receiver {row['receiver_rps']:6.0f}/s "
        f"p99 {row['receiver_p99_ms']:5.1f} ms | ratio {row['ratio']:.2f}x "
        f"(bare on uvloop {row['bare_uvloop_rps']:.0f}/s: {row['ratio_uvloop']:.2f}x)"
    )


async def first_sms(label: str, store: str, mode: str, work: Path, pages: int) -> list[float]:
    """Return seconds from sending each critical webhook to its SMS at the Twilio stand-in."""
    ends = Endpoints()
    runner, twilio = await serve(ends.twilio)
    token = work / "twilio-token"
    token.write_text("tok3n\n")
    sid = "AC" + "0" * 31 + "1"
    config = receiver_config(
        work,
        store,
        mode,
        "channels:\n"
        f"  - {{name: sms, type: sms, account_sid: {sid}, auth_token_file: {token},"
        f" from: '+15005550006', to: ['+14155550199'], api_base_url: '{twilio}'}}\n"
        "default_route: {channels: [sms]}\n"
        "delivery: {poll_interval: 1s}\n"
        "sms_rate_limit: {max_messages: 100000, window: 1m}\n",
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    latencies = []
    try:
        with process(receiver_argv(config, port)):
            await wait_ready(url)
            async with aiohttp.ClientSession() as http:
                for index in range(pages):
                    name = f"P{label.replace(' ', '')}{index}"
                    sent = time.monotonic()  # before the POST: inbox mode applies after the 200
                    await post(http, url, body(name, "critical"))
                    while name not in ends.arrived:
                        if time.monotonic() > sent + 60:
                            raise RuntimeError(f"no SMS for {name}")
                        await asyncio.sleep(0.001)
                    latencies.append(ends.arrived[name] - sent)
                    await asyncio.sleep(0.2)  # pages one at a time, each on a quiet receiver
    finally:
        await runner.cleanup()
    return latencies


def main() -> None:
    """Parse flags, run every setup, print rows and one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", default="8,32")
    parser.add_argument("--pages", type=int, default=9)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="mw-wrk-") as tmp:
        work = Path(tmp)
        lua = work / "new_group.lua"
        lua.write_text(LUA)
        for mode in ("inbox", "direct"):
            config = receiver_config(work, f"{{type: sqlite, path: {work / f'{mode}.db'}}}", mode)
            rows += load_pair(f"sqlite {mode}", config, connections, args.rounds, args.seconds, lua)
        sms: dict[str, list[float]] = {}
        for mode in ("inbox", "direct"):
            store = f"{{type: sqlite, path: {work / f'sms-{mode}.db'}}}"
            sms[f"sqlite {mode}"] = asyncio.run(first_sms(mode, store, mode, work, args.pages))
        if not args.skip_postgres:
            for mode in ("inbox", "direct"):
                with postgres_db() as dsn:
                    store = f"{{type: postgres, dsn: '{dsn}'}}"
                    config = receiver_config(work, store, mode)
                    rows += load_pair(
                        f"postgres {mode}", config, connections, args.rounds, args.seconds, lua
                    )
                with postgres_db() as dsn:
                    store = f"{{type: postgres, dsn: '{dsn}'}}"
                    label = f"postgres {mode}"
                    sms[label] = asyncio.run(first_sms(label, store, mode, work, args.pages))
    for mode, found in sms.items():
        print(f"webhook sent -> first SMS call, {mode}: median {median(found) * 1e3:.1f} ms")
    print(json.dumps({"rows": rows, "first_sms_ms": {m: median(v) * 1e3 for m, v in sms.items()}}))


if __name__ == "__main__":
    main()
