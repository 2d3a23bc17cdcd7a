"""Start the whole pipeline on free ports and tear it down: exporter → Prometheus → 2 × Alertmanager
→ receiver → SMTP / Twilio / chat fakes. Every process logs to a file the failure report prints.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import free_port, require_tool
from tests.e2e import _configs as configs
from tests.e2e import _world
from tests.e2e._fakes import FakeChat, FakeTwilio, Mailbox, fake_chat, fake_twilio, smtp_server
from tests.e2e._tap import Tap, webhook_tap

BIN = Path(sys.executable).parent


class Proc:
    """One external process started by the suite, its output going to a log file."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name, self.args, self.log = name, args, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the process."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)

    def signal(self, number: int) -> None:
        """Send a signal (SIGHUP to reload)."""
        assert self.process is not None, f"{self.name} was never started"
        assert self.process.poll() is None, f"{self.name} exited"
        self.process.send_signal(number)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 15 s; always reap."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def tail(self, chars: int = 6000) -> str:
        """Return the end of the log, and the exit status if the process ended."""
        text = self.log.read_text(errors="replace") if self.log.exists() else "(no log)"
        code = None if self.process is None else self.process.poll()
        ended = "" if code is None else f"\n[{self.name} exited with status {code}]"
        return text[-chars:] + ended


async def eventually(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; fail at the deadline."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            found = check()
            if inspect.isawaitable(found):
                found = await found
        except (aiohttp.ClientConnectionError, AssertionError) as exc:
            found, last = None, exc  # not up yet (or restarting), or not yet as expected
        if found:
            return found
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


@dataclass
class Stack:
    """The running pipeline and handles on everything the scenarios look at."""

    root: Path
    world: _world.World
    http: aiohttp.ClientSession
    plan: configs.ReceiverPlan
    prometheus: str
    alertmanagers: list[str]
    mailbox: Mailbox
    twilio: FakeTwilio
    chat: FakeChat
    taps: list[Tap]
    procs: dict[str, Proc] = field(default_factory=dict)

    @property
    def receiver(self) -> str:
        """Return the receiver's base URL."""
        return f"http://127.0.0.1:{self.plan.port}"

    def _api_headers(self) -> dict[str, str]:
        token = (self.root / "api_token").read_text().strip()
        return {"Authorization": f"Bearer {token}"}

    async def get_json(self, url: str, api: bool = False) -> Any:
        """GET a JSON document; assert 200."""
        headers = self._api_headers() if api else {}
        async with self.http.get(url, headers=headers) as response:
            assert response.status == 200, f"GET {url}: {response.status} {await response.text()}"
            return await response.json()

    async def firing(self, alertname: str) -> list[dict[str, Any]]:
        """Return Prometheus' firing alerts named `alertname`."""
        found = await self.get_json(f"{self.prometheus}/api/v1/alerts")
        return [
            a
            for a in found["data"]["alerts"]
            if a["labels"]["alertname"] == alertname and a["state"] == "firing"
        ]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """Return the result vector of a Prometheus instant query."""
        url = f"{self.prometheus}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        found = await self.get_json(url)
        result: list[dict[str, Any]] = found["data"]["result"]
        return result

    async def incidents(self, alertname: str, state: str | None = None) -> list[dict[str, Any]]:
        """Return the receiver's incidents for `alertname` (API), newest first."""
        query = f"label=alertname={alertname}" + (f"&state={state}" if state else "")
        found = await self.get_json(f"{self.receiver}/api/v1/incidents?{query}", api=True)
        incidents: list[dict[str, Any]] = found["incidents"]
        return incidents

    async def incident(self, incident_id: int) -> dict[str, Any]:
        """Return one incident with its alerts, notifications and timeline (API)."""
        found: dict[str, Any] = await self.get_json(
            f"{self.receiver}/api/v1/incidents/{incident_id}", api=True
        )
        return found

    async def reload_receiver(self, digest_at: str) -> None:
        """Rewrite the receiver config with the digest at `digest_at` and SIGHUP it."""
        configs.write_yaml(
            self.root / "receiver.yml", configs.receiver_config(self.plan, digest_at)
        )
        self.procs["receiver"].signal(signal.SIGHUP)

    def logs(self) -> str:
        """Return the tail of every component's log, for failure reports."""
        return "\n".join(f"===== {n} ({p.log}) =====\n{p.tail()}" for n, p in self.procs.items())


async def _ready(stack: Stack, name: str, url: str) -> None:
    async def probe() -> bool:
        proc = stack.procs[name]
        assert proc.process is not None, f"{name} was never started"
        assert proc.process.poll() is None, f"{name} exited"
        async with stack.http.get(url) as response:
            return response.status == 200

    try:
        await eventually(probe, f"{name} at {url}", timeout=60)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{stack.logs()}") from None


def _write_secrets(root: Path) -> None:
    for name in ("webhook_token", "api_token", "links", "twilio_token"):
        path = root / name
        path.write_text(secrets.token_urlsafe(24) + "\n")
        os.chmod(path, 0o600)


def _start(stack: Stack, name: str, args: list[str]) -> None:
    proc = Proc(name, args, stack.root / f"{name}.log")
    stack.procs[name] = proc
    proc.start()


async def _start_exporter(stack: Stack) -> str:
    config = configs.write_yaml(stack.root / "exporter.yml", _world.exporter_config(stack.world))
    listen = f"127.0.0.1:{free_port()}"
    args = [f"--config.file={config}", f"--web.listen-address={listen}"]
    _start(stack, "exporter", [str(BIN / "maintwatch-exporter"), *args])
    await _ready(stack, "exporter", f"http://{listen}/metrics")
    return listen


async def _start_receiver(stack: Stack) -> None:
    config = configs.write_yaml(stack.root / "receiver.yml", configs.receiver_config(stack.plan))
    receiver = str(BIN / "maintwatch-receiver")
    _start(stack, "receiver", [receiver, f"--config.file={config}", "--log.format=json"])
    await _ready(stack, "receiver", f"{stack.receiver}/-/ready")


async def _start_alertmanagers(stack: Stack, binary: str) -> None:
    for index, tap in enumerate(stack.taps, start=1):
        name = f"alertmanager{index}"
        config = configs.alertmanager_config(tap.url, stack.root / "webhook_token")
        path = configs.write_yaml(stack.root / f"{name}.yml", config)
        listen = stack.alertmanagers[index - 1].removeprefix("http://")
        _start(stack, name, [
            binary, f"--config.file={path}", f"--storage.path={stack.root / name}",
            f"--web.listen-address={listen}", "--cluster.listen-address=",
        ])  # fmt: skip
    for index, url in enumerate(stack.alertmanagers, start=1):
        await _ready(stack, f"alertmanager{index}", f"{url}/-/ready")


async def _start_prometheus(stack: Stack, binary: str, exporter: str) -> None:
    rules = configs.render_rules(stack.root)
    targets = [url.removeprefix("http://") for url in stack.alertmanagers]
    receiver = stack.receiver.removeprefix("http://")
    config = configs.prometheus_config(rules, exporter, receiver, targets)
    path = configs.write_yaml(stack.root / "prometheus.yml", config)
    _start(stack, "prometheus", [
        binary, f"--config.file={path}", f"--storage.tsdb.path={stack.root / 'tsdb'}",
        f"--web.listen-address={stack.prometheus.removeprefix('http://')}",
    ])  # fmt: skip
    await _ready(stack, "prometheus", f"{stack.prometheus}/-/ready")


def _stop_all(stack: Stack) -> None:
    for proc in reversed(stack.procs.values()):
        proc.stop()


@asynccontextmanager
async def running_stack(unique: str) -> AsyncIterator[Stack]:
    """Start every component (tools missing fail in CI); stop all and delete all at the end."""
    prometheus = require_tool("prometheus")
    alertmanager = require_tool("prometheus-alertmanager")
    root = Path(tempfile.mkdtemp(prefix="mw-e2e-"))
    async with AsyncExitStack() as exits:
        exits.callback(shutil.rmtree, root, ignore_errors=True)
        database = exits.enter_context(_world.laravel_database(unique))
        mailbox = Mailbox()
        smtp_port = exits.enter_context(smtp_server(mailbox))
        twilio = await exits.enter_async_context(fake_twilio())
        chat = await exits.enter_async_context(fake_chat())
        http = await exits.enter_async_context(
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20))
        )
        alertmanagers = [f"http://127.0.0.1:{free_port()}" for _ in (1, 2)]
        plan = configs.ReceiverPlan(
            root, free_port(), smtp_port, twilio.url, chat.url, alertmanagers[0]
        )
        receiver = f"http://127.0.0.1:{plan.port}"
        taps = [await exits.enter_async_context(webhook_tap(f"am{i}", receiver)) for i in (1, 2)]
        stack = Stack(
            root=root,
            world=_world.build(root / "world", database),
            http=http,
            plan=plan,
            prometheus=f"http://127.0.0.1:{free_port()}",
            alertmanagers=alertmanagers,
            mailbox=mailbox,
            twilio=twilio,
            chat=chat,
            taps=taps,
        )
        _write_secrets(root)
        exits.callback(_stop_all, stack)
        exporter = await _start_exporter(stack)
        await _start_receiver(stack)
        await _start_alertmanagers(stack, alertmanager)
        await _start_prometheus(stack, prometheus, exporter)
        yield stack
