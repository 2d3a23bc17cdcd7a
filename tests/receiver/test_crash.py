"""The real `maintwatch-receiver` process killed with SIGKILL right after answering 200."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import free_port
from tests.receiver._helpers import fixture_bytes, wait_for

pytestmark = pytest.mark.e2e
BINARY = Path(sys.executable).with_name("maintwatch-receiver")


@contextmanager
def receiver(config: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run maintwatch-receiver; SIGKILL it at exit if the test did not."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(BINARY), f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)


@asynccontextmanager
async def recorder(port: int) -> AsyncIterator[list[dict[str, Any]]]:
    """Serve a local HTTP endpoint that records the webhook channel's POSTs."""
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append({"key": request.headers.get("Idempotency-Key"), **await request.json()})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield seen
    finally:
        await runner.cleanup()


async def _ready(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(f"{url}/-/ready") as response:
            return response.status == 200
    except aiohttp.ClientConnectionError:
        return False


async def test_sigkill_after_200_still_pages(tmp_path: Path) -> None:
    hook_port, port = free_port(), free_port()
    config = tmp_path / "receiver.yml"
    config.write_text(
        f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
        "webhook: {auth: none}\n"
        f"channels: [{{name: hook, type: webhook, url: 'http://127.0.0.1:{hook_port}/hook'}}]\n"
        "default_route: {channels: [hook]}\n"
        # A short send timeout bounds the lease of a send the kill interrupts (else 30 s + 30 s).
        "delivery: {backoff_initial: 100ms, backoff_max: 300ms, max_attempts: 1000,"
        " poll_interval: 100ms, send_timeout: 2s}\n"
    )
    url, log = f"http://127.0.0.1:{port}", tmp_path / "receiver.log"
    async with aiohttp.ClientSession() as http:
        # The recorder is down: the page cannot go out before the kill.
        with receiver(config, port, log) as first:
            await wait_for(lambda: _ready(http, url), what="receiver ready")
            async with http.post(
                f"{url}/webhooks/alertmanager", data=fixture_bytes("firing-single.json")
            ) as response:
                assert response.status == 200
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        async with recorder(hook_port) as seen:
            with receiver(config, port, log):
                await wait_for(lambda: seen, what=f"page after restart; log: {log}")
                await wait_for(lambda: _ready(http, url), what="receiver ready")
        assert len(seen) == 1
        assert seen[0]["key"] == "1"
        assert "BackupTooOld" in str(seen[0])


async def test_sighup_reload_and_sigterm(tmp_path: Path) -> None:
    port, config = free_port(), tmp_path / "receiver.yml"
    good = f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\nwebhook: {{auth: none}}\n"
    config.write_text(good)
    url, log = f"http://127.0.0.1:{port}", tmp_path / "receiver.log"
    async with aiohttp.ClientSession() as http:
        with receiver(config, port, log) as process:
            await wait_for(lambda: _ready(http, url), what="receiver ready")
            config.write_text(good + "routes: [{channels: [nope]}]\n")
            process.send_signal(signal.SIGHUP)
            await wait_for(lambda: "config_reload_rejected" in log.read_text(), what="reject")
            assert await _ready(http, url)
            config.write_text(good + "external_url: https://rx.example\n")
            process.send_signal(signal.SIGHUP)
            await wait_for(lambda: "config_reloaded" in log.read_text(), what="reload")
            await wait_for(lambda: _ready(http, url), what="ready after reload")
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=30) == 0
    assert "receiver_stopped" in log.read_text()
