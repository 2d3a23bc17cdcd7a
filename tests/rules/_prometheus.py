"""A real Prometheus for the rules tests: backfilled history, a scripted target, rendered rules."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from rules.generate import render_files
from rules.model import load_thresholds
from tests.conftest import free_port, require_tool
from tests.rules._rules_helpers import RULES


def write_rules(thresholds: dict[str, Any], out: Path) -> Path:
    """Render a thresholds document (as the generator would) into `out`; return `out`."""
    out.mkdir(parents=True, exist_ok=True)
    source = out / "thresholds.yaml"
    source.write_text(yaml.safe_dump(thresholds, sort_keys=False), encoding="utf-8")
    for name, text in render_files(load_thresholds(source)).items():
        (out / name).write_text(text, encoding="utf-8")
    return out


def repo_thresholds() -> dict[str, Any]:
    """Return the project's thresholds document."""
    loaded: dict[str, Any] = yaml.safe_load((RULES / "thresholds.yaml").read_text("utf-8"))
    return loaded


def backfill(openmetrics: str, data: Path, work: Path) -> None:
    """Write history into Prometheus' data directory with promtool."""
    source = work / "history.om"
    source.write_text(openmetrics + "# EOF\n", encoding="utf-8")
    promtool = require_tool("promtool")
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )


def openmetrics(series: dict[str, list[tuple[float, float]]]) -> str:
    """Return OpenMetrics text for `{'name{labels}': [(time, value), …]}`, grouped by name."""
    lines: list[str] = []
    for key in sorted(series):
        lines += [f"{key} {value:g} {ts:.3f}" for ts, value in sorted(series[key])]
    return "\n".join(lines) + "\n"


class ScriptedTarget:
    """An HTTP /metrics target whose text is a function of the seconds since it started."""

    def __init__(self, body: Callable[[float], str]) -> None:
        self.started = time.time()
        self.port = free_port()
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                data = body(time.time() - target.started).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @contextmanager
    def running(self) -> Iterator[ScriptedTarget]:
        """Serve until the block ends."""
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


@contextmanager
def running_prometheus(
    work: Path, config: dict[str, Any], history: str | None = None, extra: tuple[str, ...] = ()
) -> Iterator[str]:
    """Run Prometheus with `config` over a data directory holding `history`; yield its URL."""
    binary = require_tool("prometheus")
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    if history:
        backfill(history, data, work)
    config_file = work / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}"
    log = (work / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address={url.removeprefix('http://')}",
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, process, work / "prometheus.log")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log.read_text()[-3000:]}")
        if _answers(f"{url}/-/ready"):
            return
        time.sleep(0.2)
    raise RuntimeError(f"prometheus not ready: {log.read_text()[-3000:]}")


def _answers(url: str) -> bool:
    """Return whether the server is up: ready, or asking for credentials."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False


class BearerProxy:
    """A reverse proxy that lets GETs through to Prometheus only with the right bearer token.

    What sits in front of Prometheus when it needs a token (Prometheus itself only checks basic
    auth): the backtest and lint must send the token from the file they were given.
    """

    def __init__(self, upstream: str, token: str) -> None:
        self.port = free_port()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {token}":
                    self._answer(401, b'{"status":"error","error":"unauthorized"}')
                    return
                with urllib.request.urlopen(upstream + self.path, timeout=60) as answer:  # noqa: S310
                    self._answer(answer.status, answer.read())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)

    @contextmanager
    def running(self) -> Iterator[str]:
        """Serve until the block ends; yield the proxy's URL."""
        thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{self.port}"
        finally:
            self.server.shutdown()
            self.server.server_close()
