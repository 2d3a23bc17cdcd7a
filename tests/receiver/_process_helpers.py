"""Run the real `maintwatch-receiver` process; a fake Twilio; read its SQLite file from outside."""

from __future__ import annotations

import asyncio
import json
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from tests.conftest import free_port
from tests.receiver._helpers import answers_200, wait_for

BINARY = Path(sys.executable).with_name("maintwatch-receiver")
TWILIO_SID = "AC" + "0" * 31 + "1"


class Receiver:
    """One `maintwatch-receiver` on a fixed port; restartable, killable, logging to a file."""

    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, nofile: int | None = None) -> None:
        """Start the process (output appended to the log); `nofile` caps its descriptors."""

        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    str(BINARY),
                    f"--config.file={self.config}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=limit if nofile is not None else None,
            )

    def kill(self) -> None:
        """SIGKILL the process and reap it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM the process and return its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)

    def pid(self) -> int:
        """Return the running process id."""
        assert self.process is not None
        return self.process.pid

    async def ready(self, http: aiohttp.ClientSession) -> None:
        """Wait until /-/ready answers 200."""
        probe = answers_200(http, f"{self.url}/-/ready")
        await wait_for(probe, timeout=30, what=f"receiver ready; log: {self.log}")


@asynccontextmanager
async def receiver_process(config: Path, log: Path) -> AsyncIterator[Receiver]:
    """Yield a started receiver; SIGKILL whatever is left at the end."""
    rx = Receiver(config, free_port(), log)
    rx.start()
    try:
        yield rx
    finally:
        if rx.process is not None and rx.process.poll() is None:
            rx.kill()


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run a read-only query on the receiver's SQLite file from this (another) process."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
        return conn.execute(sql, params).fetchall()


def file_lines(path: Path, torn_allowed: int = 0) -> list[dict[str, Any]]:
    """Return the records a file channel wrote; fail on more torn lines than allowed.

    The receiver may be writing while we read: text after the last newline is a write still in
    progress, not a line yet. A receiver SIGKILLed mid-write can leave a torn fragment; the
    channel keeps it on a line of its own (the record is retried), so a test that kills allows
    that many fragments, and every other line must be a whole record.
    """
    if not path.exists():
        return []
    records, torn = [], []
    for line in path.read_bytes().split(b"\n")[:-1]:
        if not line:
            continue
        try:
            records.append(json.loads(line.decode("utf-8")))
        except ValueError:
            torn.append(line[:80])
    assert len(torn) <= torn_allowed, f"torn lines in {path}: {torn}"
    return records


@dataclass
class FakeTwilio:
    """A local stand-in for Twilio's Messages API that keeps every accepted message body."""

    url: str
    bodies: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer first (then 201)
    stall: asyncio.Event | None = None  # when set, hold every request until it is set


TWILIO = web.AppKey("twilio", FakeTwilio)


async def _messages(request: web.Request) -> web.Response:
    fake = request.app[TWILIO]
    form = await request.post()
    if fake.stall is not None:
        await fake.stall.wait()
    if fake.answers:
        code = fake.answers.pop(0)
        error = {"code": 20000 + code, "message": f"fake {code}", "status": code}
        return web.json_response(error, status=code)
    fake.bodies.append(str(form["Body"]))
    sid = f"SM{len(fake.bodies):032x}"
    return web.json_response({"sid": sid, "status": "queued", "body": form["Body"]}, status=201)


@asynccontextmanager
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    """Serve the fake on a free port."""
    port = free_port()
    fake = FakeTwilio(url=f"http://127.0.0.1:{port}")
    app = web.Application()
    app[TWILIO] = fake
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", _messages)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake
    finally:
        if fake.stall is not None:
            fake.stall.set()
        await runner.cleanup()


def sms_channel_yaml(name: str, twilio_url: str, token_file: Path, timeout: str = "5s") -> str:
    """Return a flow-style channel entry for the sms channel pointed at the fake."""
    return (
        f"{{name: {name}, type: sms, account_sid: {TWILIO_SID}, auth_token_file: {token_file},"
        f" from: '+15005550006', to: ['+14155550199'], api_base_url: '{twilio_url}',"
        f" timeout: {timeout}}}"
    )
