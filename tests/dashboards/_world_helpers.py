"""A demo world (backups, certificate, app) scraped by a real exporter and a real Prometheus,
and a real receiver paging for a stream of webhooks."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import os
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme

ROOT = Path(__file__).resolve().parents[2]
EXPORTER = ROOT / ".venv" / "bin" / "maintwatch-exporter"
RECEIVER = ROOT / ".venv" / "bin" / "maintwatch-receiver"


def build_world(root: Path, exporter_port: int) -> Path:
    """Create backups, a certificate and an app under `root`; return the exporter config.

    The app's access log is `root/app/storage/logs/access.log` (see `traffic`).
    """
    backups = root / "backups"
    backups.mkdir()
    now = datetime.now(UTC)
    for days in (3, 2, 1):
        when = now - timedelta(days=days)
        path = backups / f"tongacp_db_{when:%Y%m%d%H%M%S}.sql.gz"
        path.write_bytes(gzip.compress(b"-- MariaDB dump\nINSERT INTO users VALUES (1);\n" * days))
        os.utime(path, (when.timestamp(), when.timestamp()))
    files = root / "files"
    files.mkdir()
    site = root / "site"
    (site / "public").mkdir(parents=True)
    (site / "public" / "index.php").write_text("<?php echo 1;\n")
    subprocess.run(["tar", "-czf", str(files / "site.tar.gz"), "-C", str(site), "."], check=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    ca.issue_cert("www.example.org").cert_chain_pems[0].write_to_path(str(root / "www.pem"))
    logs = root / "app" / "storage" / "logs"
    logs.mkdir(parents=True)
    (root / "app" / "storage" / "framework").mkdir()
    (root / "app" / "storage" / "framework" / "down").write_text("{}")
    (logs / "laravel.log").write_text(
        "[2025-05-01 12:00:00] production.ERROR: boom\n[2025-05-01 12:00:01] production.INFO: ok\n"
    )
    (logs / "access.log").write_text(
        '10.0.0.1 - - [01/May/2025:12:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"\n'
        '10.0.0.1 - - [01/May/2025:12:00:01 +0000] "GET /x HTTP/1.1" 502 0 "-" "curl/8.5.0"\n'
    )
    config = root / "exporter.yml"
    config.write_text(
        json.dumps(
            {
                "defaults": {"interval": "1s", "timeout": "1s"},
                "backups": [
                    {
                        "name": "db",
                        "directory": str(backups),
                        "glob": "tongacp_db_*.sql.gz",
                        "timestamp": "tongacp_db_%Y%m%d%H%M%S.sql.gz",
                        "timezone": "UTC",
                        "max_age": "26h",
                        "retention": "30d",
                    },
                    {
                        "name": "files",
                        "directory": str(files),
                        "settle": "0s",
                        "restore": {
                            "engine": "tarball",
                            "directory": str(root / "drill"),
                            "paths": ["public/index.php"],
                        },
                    },
                ],
                "tls": [{"name": "www", "path": str(root / "www.pem")}],
                "apps": [
                    {
                        "name": "portal",
                        "path": str(root / "app"),
                        "logs": [{"path": "storage/logs/laravel.log", "from_beginning": True}],
                        "access_logs": [
                            {"path": "storage/logs/access.log", "from_beginning": True}
                        ],
                        "directories": [{"name": "logs", "path": "storage/logs"}],
                    }
                ],
                "http": [{"name": "self", "url": f"http://127.0.0.1:{exporter_port}/metrics"}],
            }
        )
    )
    return config


def build_receiver(root: Path, alertmanager_url: str) -> Path:
    """Write a receiver config under `root` (created); return its path.

    Every incident pages channel `log` and channel `broken`, whose file cannot be created, so
    each of its messages fails and falls back to `log`; a second escalation step follows a
    second later. Retention and the silencer (against `alertmanager_url`) run every second.
    """
    root.mkdir()
    log = {"name": "log", "type": "file", "path": str(root / "notifications.jsonl")}
    broken = {"name": "broken", "type": "file", "path": str(root / "missing" / "x.jsonl")}
    steps = [
        {"after": "0s", "notify": ["channel:log", "channel:broken"]},
        {"after": "1s", "notify": ["channel:log"]},
    ]
    config = root / "receiver.yml"
    config.write_text(
        json.dumps(
            {
                "store": {"type": "sqlite", "path": str(root / "receiver.db")},
                "webhook": {"auth": "none"},
                "channels": [log, broken],
                "policies": [{"name": "world", "steps": steps}],
                "default_route": {"channels": ["log"], "policy": "world"},
                "delivery": {
                    "max_attempts": 2,
                    "backoff_initial": "100ms",
                    "fallback_channel": "log",
                },
                "retention": {
                    "interval": "1s",
                    "resolved_incidents": "2s",
                    "delivered_notifications": "2s",
                },
                "alertmanager": {"url": alertmanager_url, "interval": "1s"},
            }
        )
    )
    return config


def prometheus_config(root: Path, jobs: dict[str, int], rule_files: list[Path]) -> Path:
    """Write a Prometheus config scraping each job's port every second, with our rules."""
    config = root / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(p) for p in rule_files],
                "scrape_configs": [
                    {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                    for job, port in jobs.items()
                ],
            }
        )
    )
    return config


@contextmanager
def running(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run a process for the duration of the block; stop it and wait for it afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def get_json(url: str) -> Any:
    """GET a JSON document from a local server."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - http://127.0.0.1 only
        return json.loads(response.read())


def query(base: str, expr: str) -> dict[str, Any]:
    """Run an instant query; return Prometheus' whole answer (status, data or error)."""
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        answer: dict[str, Any] = get_json(url)
    except urllib.error.HTTPError as exc:  # 400/422 carry the PromQL error as JSON
        answer = json.loads(exc.read())
    return answer


def wait_until(check: Callable[[], bool], what: str, log: Path, timeout: float = 60) -> None:
    """Poll `check` until it holds; fail with the process log when the deadline passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError):
            pass  # the server is not listening yet, or answers "not ready" in plain text
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; log:\n{log.read_text()[-3000:]}")


@contextmanager
def every_while(every: float, step: Callable[[int], None], name: str) -> Iterator[None]:
    """Call `step(n)` for n = 0, 1, ... every `every` seconds on a thread while in the block."""
    stop = threading.Event()

    def loop() -> None:
        for n in itertools.count():
            if stop.wait(every):
                return
            step(n)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextmanager
def traffic(access_log: Path, every: float = 0.3) -> Iterator[None]:
    """Append a request line (every tenth a 502) to the world's access log while in the block."""

    def write(n: int) -> None:
        status = 502 if (n + 1) % 10 == 0 else 200
        with access_log.open("a", encoding="utf-8") as handle:
            handle.write(
                f'10.0.0.1 - - [01/May/2025:12:00:{(n + 1) % 60:02d} +0000] "GET /{n + 1} HTTP/1.1"'
                f' {status} 5 "-" "curl/8.5.0"\n'
            )

    with every_while(every, write, "world-traffic"):
        yield


class _Alertmanager(BaseHTTPRequestHandler):
    """Alertmanager's API as the silencer sees it with nothing acknowledged: no silences."""

    def do_GET(self) -> None:
        known = self.path.split("?", 1)[0] in ("/api/v2/silences", "/api/v2/alerts")
        body = b"[]" if known else b"not found"
        self.send_response(200 if known else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@contextmanager
def fake_alertmanager() -> Iterator[str]:
    """Serve `_Alertmanager` on a free port for the block; return its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Alertmanager)
    thread = threading.Thread(target=server.serve_forever, name="world-alertmanager", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def webhook(group: int, status: str) -> bytes:
    """Return an Alertmanager webhook (version 4) for alert group `group`, firing or resolved."""
    labels = {"alertname": "WorldDown", "severity": "critical", "group": str(group)}
    alert = {
        "status": status,
        "labels": labels,
        "annotations": {"summary": "the world is down"},
        "startsAt": "2025-05-01T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2025-05-01T12:05:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"{group:016x}",
    }
    body = {
        "version": "4",
        "groupKey": f'{{}}:{{group="{group}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "maintwatch",
        "groupLabels": {"group": str(group)},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }
    return json.dumps(body).encode()


@contextmanager
def webhooks(url: str, every: float = 0.5) -> Iterator[None]:
    """Post a new firing alert group to `url` each `every` seconds while in the block, and
    resolve the group opened four posts earlier (its escalation has run by then)."""

    def post(body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            url, body, {"Content-Type": "application/json"}
        )
        # Not listening yet, or an error status: the receiver's counters show what it answered.
        with contextlib.suppress(OSError):
            urllib.request.urlopen(request, timeout=10).close()  # noqa: S310

    def send(group: int) -> None:
        post(webhook(group, "firing"))
        if group >= 4:
            post(webhook(group - 4, "resolved"))

    with every_while(every, send, "world-webhooks"):
        yield
