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
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from tests.conftest import free_port
from tests.receiver._helpers import answers_200, wait_for

BINARY = Path(sys.executable).with_name("maintwatch-receiver")
TWILIO_SID = "AC" + "0" * 31 + "1"


class Receiver:
    """One `maintwatch-receiver` on a fixed port; restartable, killable, logging to a file."""

    def __init__(self, config: Path, port: int, log: Path, flags: tuple[str, ...] = ()) -> None:
        self.config, self.port, self.log, self.flags = config, port, log, flags
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
                    *self.flags,
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
async def receiver_process(
    config: Path, log: Path, flags: tuple[str, ...] = ()
) -> AsyncIterator[Receiver]:
    """Yield a started receiver (with extra command-line `flags`); SIGKILL whatever is left."""
    rx = Receiver(config, free_port(), log, flags)
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
    """A local stand-in for Twilio's Messages API: create, and list (newest first).

    `bodies` holds every message Twilio created, in order. A message is created once its
    request has been read, whatever happens to the connection afterwards, as with Twilio.
    """

    url: str
    bodies: list[str] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    # Statuses to answer the next requests with, without creating a message; None: create.
    answers: list[int | None] = field(default_factory=list)
    stall: asyncio.Event | None = None  # when set, hold every request until it is set
    arrived: int = 0  # create requests read so far (stalled ones included)
    hang_up: int = 0  # close this many connections after creating the message, unanswered
    lookups: int = 0  # list requests answered
    list_status: int = 200  # a failing lookup API: any other status
    hold_to: set[str] = field(default_factory=set)  # numbers whose requests hang until the end
    held: list[str] = field(default_factory=list)  # numbers of the requests hanging now
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def create(self, form: Any) -> dict[str, Any]:
        """Create a message the way Twilio records it."""
        body = str(form["Body"])
        self.bodies.append(body)
        message = {
            "sid": f"SM{len(self.bodies):032x}",
            "status": "queued",
            "to": str(form["To"]),
            "from": str(form.get("From", "")),
            "body": body,
            "date_created": format_datetime(datetime.now(UTC), usegmt=True),
        }
        self.messages.append(message)
        return message


TWILIO = web.AppKey("twilio", FakeTwilio)


async def _messages(request: web.Request) -> web.StreamResponse:
    fake = request.app[TWILIO]
    form = await request.post()
    fake.arrived += 1
    if form["To"] in fake.hold_to:
        fake.held.append(str(form["To"]))
        await fake.release.wait()
    code = fake.answers.pop(0) if fake.answers else None
    message = fake.create(form) if code is None else None
    if fake.stall is not None:  # the message exists; only the answer is held back
        await fake.stall.wait()
    if code is not None:
        error = {"code": 20000 + code, "message": f"fake {code}", "status": code}
        return web.json_response(error, status=code)
    if fake.hang_up:
        fake.hang_up -= 1
        assert request.transport is not None
        request.transport.close()  # the body was read and the message created: no answer
    return web.json_response(message, status=201)


async def _list(request: web.Request) -> web.Response:
    fake = request.app[TWILIO]
    fake.lookups += 1
    if fake.list_status != 200:
        error = {"code": 20500, "message": "fake lookup failure", "status": fake.list_status}
        return web.json_response(error, status=fake.list_status)
    query = request.query
    found = [
        m
        for m in reversed(fake.messages)
        if m["to"] == query.get("To", m["to"]) and m["from"] == query.get("From", m["from"])
    ]
    size, number = int(query.get("PageSize", "50")), int(query.get("Page", "0"))
    rest = found[(number + 1) * size :]
    after = {**query, "Page": str(number + 1), "PageSize": str(size)}
    page = {
        "messages": found[number * size : (number + 1) * size],
        "next_page_uri": f"{request.path}?{urlencode(after)}" if rest else None,
        "page": number,
        "page_size": size,
    }
    return web.json_response(page)


@asynccontextmanager
async def fake_twilio(port: int | None = None) -> AsyncIterator[FakeTwilio]:
    """Serve the fake on `port` (default: a free one)."""
    port = port or free_port()
    fake = FakeTwilio(url=f"http://127.0.0.1:{port}")
    app = web.Application()
    app[TWILIO] = fake
    app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", _messages)
    app.router.add_get("/2010-04-01/Accounts/{sid}/Messages.json", _list)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield fake
    finally:
        if fake.stall is not None:
            fake.stall.set()
        fake.release.set()
        await runner.cleanup()


def sms_channel_yaml(name: str, twilio_url: str, token_file: Path, timeout: str = "5s") -> str:
    """Return a flow-style channel entry for the sms channel pointed at the fake."""
    return (
        f"{{name: {name}, type: sms, account_sid: {TWILIO_SID}, auth_token_file: {token_file},"
        f" from: '+15005550006', to: ['+14155550199'], api_base_url: '{twilio_url}',"
        f" timeout: {timeout}}}"
    )


def sms_paging_config(store: str, tmp_path: Path, twilio: FakeTwilio, api_token: str) -> str:
    """Return a receiver config on `store` (flow YAML) paging one SMS channel at the fake,
    with the API on: what the inbox tests of either store run."""
    token = tmp_path / "twilio-token"
    token.write_text("tok3n\n")
    return (
        f"store: {store}\n"
        "webhook: {auth: none}\n"
        f"api: {{token: {api_token}}}\n"
        f"channels: [{sms_channel_yaml('sms', twilio.url, token)}]\n"
        "default_route: {channels: [sms]}\n"
        # Rows claimed when the receiver was killed wait out their lease before a resend.
        "delivery: {poll_interval: 50ms, backoff_initial: 100ms, send_timeout: 2s, "
        "lease_margin: 1s}\n"
        "sms_rate_limit: {max_messages: 100000, window: 1m}\n"
    )
