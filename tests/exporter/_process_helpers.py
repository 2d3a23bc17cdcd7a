"""Run the real `maintwatch-exporter` process on a config and read its scrapes and logs."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import free_port

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$", re.MULTILINE)


class Exporter:
    """A running exporter process; `stop()` sends SIGTERM and measures the time to exit."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.log = log

    def scrape(self) -> str:
        """Return the text of one scrape (raises OSError when the server does not answer)."""
        assert self.proc.poll() is None, f"exporter exited:\n{self.log.read_text()}"
        with urllib.request.urlopen(self.url, timeout=5) as resp:  # noqa: S310 - loopback
            return str(resp.read().decode())

    def value(self, text: str, name: str, /, **labels: str) -> float | None:
        """Return one sample's value from a scrape's text, or None when it is absent."""
        wanted = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        for match in _SAMPLE.finditer(text):
            if match.group(1) == name and (match.group(2) or "{}") == wanted:
                return float(match.group(3))
        return None

    def until(self, check: Callable[[str], bool], timeout: float = 60.0) -> str:
        """Scrape until `check(text)` holds; return that scrape (fail after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                text = self.scrape()
            except OSError:
                text = ""
            if text and check(text):
                return text
            assert time.monotonic() < deadline, f"condition not met; last scrape:\n{text}"
            time.sleep(0.1)

    def status(self, field: str) -> int:
        """Return a number from /proc/<pid>/status: `Threads`, or `VmHWM` (peak RSS, KiB)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} in /proc/{self.proc.pid}/status")

    def events(self) -> list[dict[str, Any]]:
        """Return the JSON log lines written so far."""
        lines = self.log.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def stop(self, wait: float = 20.0) -> float | None:
        """SIGTERM; return the seconds until it exited, or None when it did not within `wait`."""
        if self.proc.poll() is not None:
            return 0.0
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - started


@contextmanager
def running_exporter(
    tmp_path: Path, config_text: str, module: str = "exporter"
) -> Iterator[Exporter]:
    """Start the exporter on `config_text` (JSON logs in tmp_path); kill it if still running."""
    config = tmp_path / "exporter.yml"
    config.write_text(config_text)
    port = free_port()
    log = tmp_path / "exporter.log"
    argv = [sys.executable, "-m", module, "--config.file", str(config)]
    argv += ["--web.listen-address", f"127.0.0.1:{port}", "--log.format", "json"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield Exporter(proc, port, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
