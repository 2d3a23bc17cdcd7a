"""Page latency with a hung neighbour: a critical SMS while Slack hangs and a webhook refuses.

Two real `maintwatch-receiver` processes (SQLite) side by side in one run, with the same routes:
critical incidents go to SMS (the real twilio client, at a local stand-in of Twilio's Messages
API), Slack and a generic webhook; warnings go to Slack and the webhook only. In the first
receiver every endpoint answers at once; in the second, Slack's webhook reads each request and
never answers (until the 30 s send timeout) and the webhook's port refuses connections. Each
round sends a burst of warnings to both (filling the Slack lanes), then one critical incident
to each, alternating which goes first, and times webhook accepted → SMS received by the
stand-in. Prints medians and p-max per receiver and their ratio (1.0x: the neighbour costs the
page nothing).

    .venv/bin/python benchmarks/delivery_lanes.py [--rounds 15] [--warnings 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from common import VENV_BIN, free_port, median
from receiver_soak import wait_ready

SID = "AC" + "0" * 31 + "1"


class Endpoints:
    """The stand-ins: Twilio (records when each SMS arrived), a healthy and a hung chat hook."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}  # alertname -> monotonic time the SMS arrived
        self.count = 0
        self.release = asyncio.Event()

    async def twilio(self, request: web.Request) -> web.Response:
        form = await request.post()
        body = str(form["Body"])
        self.arrived.setdefault(body.split()[1], time.monotonic())  # "CRITICAL <alertname>"
        self.count += 1
        sid = f"SM{self.count:032x}"
        return web.json_response({"sid": sid, "status": "queued", "body": body}, status=201)

    async def healthy(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    async def hung(self, request: web.Request) -> web.Response:
        await request.read()
        await self.release.wait()
        return web.Response(text="late")


async def serve(handler: Any, method: str = "POST") -> tuple[web.AppRunner, str]:
    """Serve one handler on a free loopback port; return the runner and its URL."""
    app = web.Application()
    app.router.add_route(method, "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def config(work: Path, twilio: str, chat: str, hook: str) -> Path:
    """Write one receiver's config and return its path."""
    work.mkdir()
    token = work / "twilio-token"
    token.write_text("tok3n\n")
    path = work / "receiver.yml"
    path.write_text(
        f"store: {{type: sqlite, path: {work / 'r.db'}}}\n"
        "webhook: {auth: none}\n"
        "channels:\n"
        f"  - {{name: sms, type: sms, account_sid: {SID}, auth_token_file: {token},"
        f" from: '+15005550006', to: ['+14155550199'], api_base_url: '{twilio}'}}\n"
        f"  - {{name: chat, type: slack, webhook_url: '{chat}/hook'}}\n"
        f"  - {{name: hook, type: webhook, url: '{hook}/hook'}}\n"
        "routes:\n"
        "  - {name: pages, matchers: ['severity=\"critical\"'], channels: [sms, chat, hook]}\n"
        "default_route: {channels: [chat, hook]}\n"
        "delivery: {poll_interval: 1s}\n"
        "sms_rate_limit: {max_messages: 100000, window: 1m}\n"
        "retention: {enabled: false}\n"
    )
    return path


def body(name: str, severity: str) -> dict[str, Any]:
    """Return a webhook payload opening one incident."""
    labels = {"alertname": name, "severity": severity}
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {},
        "startsAt": "2026-11-22T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": name,
    }
    return {
        "version": "4",
        "groupKey": name,
        "receiver": "bench",
        "status": "firing",
        "alerts": [alert],
        "groupLabels": {"alertname": name},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://am",
        "truncatedAlerts": 0,
    }


async def post(http: aiohttp.ClientSession, url: str, data: dict[str, Any]) -> None:
    """POST a webhook; it must be accepted."""
    async with http.post(f"{url}/webhooks/alertmanager", json=data) as response:
        assert response.status == 200, await response.text()


async def page(http: aiohttp.ClientSession, url: str, ends: Endpoints, name: str) -> float:
    """Open one critical incident; return seconds from accepted to SMS received."""
    await post(http, url, body(name, "critical"))
    accepted = time.monotonic()
    deadline = accepted + 120
    while name not in ends.arrived:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no SMS for {name}")
        await asyncio.sleep(0.005)
    return ends.arrived[name] - accepted


async def run(rounds: int, warnings: int) -> dict[str, Any]:
    """Run both receivers side by side and return the latencies."""
    ends = Endpoints()
    runners = []
    for handler, method in ((ends.twilio, "POST"), (ends.healthy, "POST"), (ends.hung, "POST")):
        runners.append(await serve(handler, method))
    twilio_runner, twilio = runners[0]
    twilio_runner.app.router.add_get("/{tail:.*}", ends.healthy)  # lookups: none expected
    healthy, hung = runners[1][1], runners[2][1]
    refused = f"http://127.0.0.1:{free_port()}"
    latencies: dict[str, list[float]] = {"healthy": [], "hung": []}
    with tempfile.TemporaryDirectory(prefix="mw-lanes-") as tmp:
        work = Path(tmp)
        configs = {
            "healthy": config(work / "healthy", twilio, healthy, healthy),
            "hung": config(work / "hung", twilio, hung, refused),
        }
        procs, urls = {}, {}
        for name, path in configs.items():
            port = free_port()
            urls[name] = f"http://127.0.0.1:{port}"
            procs[name] = subprocess.Popen(
                [
                    str(VENV_BIN / "maintwatch-receiver"),
                    f"--config.file={path}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=error",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        try:
            async with aiohttp.ClientSession() as http:
                for url in urls.values():
                    await wait_ready(url)
                for index in range(rounds):
                    for name, url in urls.items():
                        for w in range(warnings):
                            await post(http, url, body(f"W{name}{index}x{w}", "warning"))
                    order = list(urls) if index % 2 == 0 else list(reversed(urls))
                    for name in order:
                        latency = await page(http, urls[name], ends, f"C{name}{index}")
                        latencies[name].append(latency)
        finally:
            ends.release.set()
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(timeout=60)
            for runner, _ in runners:
                await runner.cleanup()
    return latencies


def main() -> None:
    """Parse flags, run, print one JSON line and a readable summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warnings", type=int, default=20)
    args = parser.parse_args()
    latencies = asyncio.run(run(args.rounds, args.warnings))
    result = {
        "rounds": args.rounds,
        "warnings": args.warnings,
        **{
            f"{name}_{stat}_ms": round(fn(values) * 1000, 1)
            for name, values in latencies.items()
            for stat, fn in (("p50", median), ("max", max))
        },
    }
    result["ratio"] = round(result["hung_p50_ms"] / result["healthy_p50_ms"], 2)
    print(json.dumps(result))
    print(
        f"critical SMS latency, median of {args.rounds} rounds: all healthy "
        f"{result['healthy_p50_ms']} ms, Slack hung + webhook refused {result['hung_p50_ms']} ms "
        f"({result['ratio']}x)"
    )


if __name__ == "__main__":
    main()
