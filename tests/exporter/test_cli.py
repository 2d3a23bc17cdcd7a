"""The real `maintwatch-exporter` process: config check, reload on SIGHUP, clean SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from exporter import cli
from exporter.collectors.registry import load_config_text
from tests.conftest import free_port

EXPORTER = [sys.executable, "-m", "exporter"]


def run_check(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXPORTER, "--config.file", str(config), "--check-config"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_check_config_lists_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("defaults: {interval: 26x, timeout: soon}\nbogus: 1\n")
    result = run_check(config)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{config}: defaults.interval: invalid duration '26x'")
    assert lines[1].startswith(f"{config}: defaults.timeout: invalid duration 'soon'")
    assert lines[2] == f"{config}: bogus: unknown field"
    assert lines[3] == "3 problem(s) in the configuration"


def test_check_config_ok(tmp_path: Path) -> None:
    config = tmp_path / "ok.yml"
    config.write_text("defaults: {interval: 30s}\n")
    result = run_check(config)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def wait_http(url: str, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - local test server
                return str(resp.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def wait_log(path: Path, needle: str, deadline: float) -> None:
    while needle not in path.read_text():
        assert time.monotonic() < deadline, f"{needle!r} not logged:\n{path.read_text()}"
        time.sleep(0.1)


def test_sighup_reload_and_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "c.yml"
    config.write_text("defaults: {interval: 30s}\n")
    port = free_port()
    log = tmp_path / "log.txt"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                *EXPORTER,
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{port}",
                "--log.format",
                "json",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        assert "maintwatch_build_info" in wait_http(f"http://127.0.0.1:{port}/metrics", deadline)
        config.write_text("defaults: {interval: never}\n")
        proc.send_signal(signal.SIGHUP)
        wait_log(log, '"event": "config_reload_rejected"', deadline)
        assert "invalid duration 'never'" in log.read_text()
        assert "maintwatch_build_info" in wait_http(f"http://127.0.0.1:{port}/metrics", deadline)
        config.write_text("defaults: {interval: 10s}\n")
        proc.send_signal(signal.SIGHUP)
        wait_log(log, '"event": "config_reloaded"', deadline)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert '"event": "exporter_stopped"' in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_serve_cleans_up_when_the_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    closed: list[bool] = []

    class Recording(cli.Runtime):
        async def close(self) -> None:
            closed.append(True)
            await super().close()

    monkeypatch.setattr(cli, "Runtime", Recording)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = cli.parse_args(["--web.listen-address", f"127.0.0.1:{port}"])
        with pytest.raises(OSError, match="address"):
            await cli.serve(args, load_config_text(""))
    assert closed == [True]
