"""Webhook latency while people look at a huge incident: idle vs several page views at once.

One receiver process (durable SQLite) holds an incident of `--alerts` alerts (10 000 by
default). wrk posts webhooks (each a new alert group: the worst-case write) for `--seconds`,
once alone ("idle") and once while a second wrk keeps `--viewers` people loading that
incident's pages and the incidents list, each pausing `--pause` ms between views (0: as
fast as they are served), alternating the order each round. Reported: the
webhook p99 of each (wrk's own latency distribution), medians over `--rounds`, their ratio
(target: within 2x of idle), and how many page views were served.

    .venv/bin/python benchmarks/page_views.py [--alerts 10000] [--viewers 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import common
import structlog
from aiohttp import web

TOKEN = "bench-token"  # noqa: S105 - a throwaway receiver on loopback
API = "bench-api"
POST_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local body = string.format([[{"receiver":"hook","status":"firing","alerts":[{"status":"firing",
"labels":{"alertname":"Bench","severity":"warning","n":"%d"},"annotations":{"summary":"b",
"description":"value 42 above 10"},"startsAt":"2026-11-22T12:00:00Z",
"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://127.0.0.1:9/graph","fingerprint":"f%d"}],
"groupLabels":{"n":"%d"},"commonLabels":{"alertname":"Bench","severity":"warning"},
"commonAnnotations":{},"externalURL":"http://am","version":"4","groupKey":"{}:{n=\\"%d\\"}",
"truncatedAlerts":0}]], counter, counter, counter, counter)
  return wrk.format("POST", "/webhooks/alertmanager",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer @TOKEN@"}, body)
end
"""
VIEW_LUA = """
paths = {"/incidents/1", "/", "/incidents/1?page=7"}
i = 0
delay = function()
  return @PAUSE@
end
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % #paths) + 1], {["Cookie"] = [[@COOKIE@]]})
end
"""


def _serve(port: int, directory: str) -> None:
    from maintwatch import logs
    from receiver.app import make_app
    from receiver.config import load_config_text

    logs.configure("warning")
    text = f"""
store: {{type: sqlite, path: {directory}/bench.db}}
webhook: {{auth: bearer, token: {TOKEN}}}
api: {{token: {API}}}
web: {{secure_cookies: false, api_token_login: true, graphs: {{enabled: false}}}}
"""
    app = make_app(load_config_text(text), structlog.get_logger("bench"))
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
        return response.status, response.headers


def _big_incident(base: str, alerts: int) -> None:
    """Open incident 1 with `alerts` alerts, sent in chunks as Alertmanager's group grows."""
    for first in range(0, alerts, 1000):
        group = [
            {
                "status": "firing",
                "labels": {"alertname": "Huge", "severity": "critical", "shard": f"s{n:05d}"},
                "annotations": {"summary": "huge", "description": f"shard {n} is 42, above 10"},
                "startsAt": "2026-11-22T12:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9/graph?g0.expr=up",
                "fingerprint": f"h{n:07d}",
            }
            for n in range(first, min(alerts, first + 1000))
        ]
        body = {
            "receiver": "hook",
            "status": "firing",
            "alerts": group,
            "groupLabels": {"alertname": "Huge"},
            "commonLabels": {"alertname": "Huge", "severity": "critical"},
            "commonAnnotations": {},
            "externalURL": "http://am",
            "version": "4",
            "groupKey": '{}:{alertname="Huge"}',
            "truncatedAlerts": 0,
        }
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        status, _ = _post(f"{base}/webhooks/alertmanager", json.dumps(body).encode(), headers)
        assert status == 200, status


def _login(base: str) -> str:
    class Keep(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(Keep)
    data = f"name=bench&password={API}&next=/".encode()
    try:
        opener.open(f"{base}/login", data=data, timeout=30)
    except urllib.error.HTTPError as exc:
        if exc.code == 303:
            return str(exc.headers["Set-Cookie"]).split(";", 1)[0]
        raise
    raise RuntimeError("login did not redirect")


def _wrk(base: str, script: Path, seconds: int, connections: int) -> subprocess.Popen[str]:
    wrk = common.tool("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    return subprocess.Popen([*argv, base], stdout=subprocess.PIPE, text=True)


def _p99_ms(out: str) -> float:
    found = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no p99 in wrk output:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]
    return float(found.group(1)) * scale


def _check(out: str, what: str) -> str:
    """Return wrk's output; fail when a request errored or was answered other than 2xx/3xx."""
    if "Non-2xx or 3xx responses" in out or "Socket errors" in out or "error" in out.lower():
        raise RuntimeError(f"{what} failed:\n{out}")
    return out


def _requests(out: str) -> int:
    found = re.search(r"^\s+(\d+) requests in", out, re.MULTILINE)
    return int(found.group(1)) if found else 0


def _round(base: str, work: Path, args: argparse.Namespace, viewed: bool) -> dict[str, float]:
    views = _wrk(base, work / "view.lua", args.seconds + 2, args.viewers) if viewed else None
    if views is not None:
        time.sleep(1)  # the views are under way before the webhooks start
    posts = _wrk(base, work / "post.lua", args.seconds, args.concurrency)
    out = _check(posts.communicate()[0], "webhooks")
    result = {"p99_ms": _p99_ms(out), "webhooks": float(_requests(out))}
    if views is not None:
        view_out = _check(views.communicate()[0], "page views")
        result["views"] = float(_requests(view_out))
        result["view_p99_ms"] = _p99_ms(view_out)
    return result


def main() -> None:
    """Measure and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=10000)
    parser.add_argument("--viewers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pause", type=int, default=1000, help="ms each viewer waits per view")
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    args = parser.parse_args()
    common.be_nice()
    with tempfile.TemporaryDirectory() as directory:
        work, port = Path(directory), common.free_port()
        process = multiprocessing.Process(target=_serve, args=(port, directory), daemon=True)
        process.start()
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(base)
            _big_incident(base, args.alerts)
            (work / "post.lua").write_text(POST_LUA.replace("@TOKEN@", TOKEN))
            view = VIEW_LUA.replace("@COOKIE@", _login(base)).replace("@PAUSE@", str(args.pause))
            (work / "view.lua").write_text(view)
            idle, viewed = [], []
            for index in range(args.rounds):
                for with_views in (index % 2 == 1, index % 2 == 0):
                    result = _round(base, work, args, with_views)
                    (viewed if with_views else idle).append(result)
        finally:
            process.terminate()
            process.join(10)
    idle_p99 = common.median([r["p99_ms"] for r in idle])
    viewed_p99 = common.median([r["p99_ms"] for r in viewed])
    result = {
        "alerts": args.alerts,
        "viewers": args.viewers,
        "pause_ms": args.pause,
        "idle_p99_ms": round(idle_p99, 2),
        "viewed_p99_ms": round(viewed_p99, 2),
        "ratio": round(viewed_p99 / idle_p99, 2),
        "views_per_round": common.median([r["views"] for r in viewed]),
        "view_p99_ms": round(common.median([r["view_p99_ms"] for r in viewed]), 1),
        "webhooks_idle": common.median([r["webhooks"] for r in idle]),
        "webhooks_viewed": common.median([r["webhooks"] for r in viewed]),
        "machine": common.machine(),
    }
    print(json.dumps(result))
    if args.json:
        common.write_json(args.json, result)


def _wait(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/-/ready", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the receiver did not come up")


if __name__ == "__main__":
    main()
