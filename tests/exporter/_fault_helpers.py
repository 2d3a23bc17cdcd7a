"""Fault injection for the exporter's fault matrix: a TCP proxy that can go down, go silent
or answer garbage, a small supervisord, and a local health endpoint.

The proxy sits between a collector and a real server on this machine (Redis, PostgreSQL,
MariaDB, supervisord, a TLS server, an HTTP server), so every fault is a real network fault
seen through the collector's real client library.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

from aiohttp import web

from tests.conftest import free_port, require_tool
from tests.exporter._supervisor_helpers import Supervisord, _wait_up

Mode = Literal["pass", "down", "blackhole", "garbage"]
GARBAGE = b"\x00\xff garbage \x1b[31m not a protocol answer \xfe\r\n" * 8


class FaultProxy:
    """Forward 127.0.0.1:`port` to `upstream` unless a fault mode says otherwise.

    pass: forward. down: nothing listens (connection refused) and open connections are cut.
    blackhole: connections stay open and new ones are accepted, but nothing is forwarded
    (a server that stopped answering); a connection silenced this way stays silent after the
    fault ends, like a half-dead TCP connection, until its client gives up on it. garbage:
    every connection is answered with bytes that are no protocol at all, then closed.
    """

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.port = free_port()
        self.upstream = upstream
        self.mode: Mode = "pass"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._silent: set[asyncio.StreamReader] = set()
        self._readers: set[asyncio.StreamReader] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen (again)."""
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def set(self, mode: Mode) -> None:
        """Switch to a mode (see the class docstring for what happens to open connections)."""
        previous, self.mode = self.mode, mode
        if mode == "blackhole":
            self._silent |= self._readers  # existing connections go silent, as when a server hangs
        elif not (mode == "pass" and previous == "blackhole"):
            await self._cut()
        if mode == "down":
            await self._stop_listening()
        else:
            await self.start()

    async def close(self) -> None:
        """Stop listening and cut every connection."""
        await self._stop_listening()
        await self._cut()

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _cut(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writers.clear()
        self._readers.clear()
        self._silent.clear()

    def _spawn(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter | None) -> None:
        self._readers.add(src)
        task = asyncio.create_task(self._pipe(src, dst))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.mode == "garbage":
            writer.write(GARBAGE)
            with contextlib.suppress(OSError):
                await writer.drain()
            writer.close()
            return
        if self.mode == "blackhole":
            self._silent.add(reader)
            self._spawn(reader, None)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        self._spawn(reader, up_writer)
        self._spawn(up_reader, writer)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter | None) -> None:
        try:
            while data := await src.read(65536):
                if dst is None or src in self._silent:
                    continue  # swallowed: the peer waits for an answer that never comes
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            self._readers.discard(src)
            if dst is not None:
                dst.transport.abort()


@contextlib.asynccontextmanager
async def fault_proxy(upstream: tuple[str, int]) -> AsyncIterator[FaultProxy]:
    """Run a FaultProxy for the duration of the block."""
    proxy = FaultProxy(upstream)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


_SUPERVISORD_CONF = """
[inet_http_server]
port=127.0.0.1:{port}
username=mw
password={password}

[unix_http_server]
file=%(here)s/supervisor.sock
chmod=0700

[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s
nodaemon=true
loglevel=warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:worker]
process_name=%(program_name)s_%(process_num)02d
command={python} -S -c "import time; time.sleep(3600)"
numprocs=2
startsecs=0
stdout_logfile=%(here)s/worker.log

[program:scheduler]
command={python} -S -c "import time; time.sleep(3600)"
startsecs=0
stdout_logfile=%(here)s/scheduler.log
"""


@contextlib.contextmanager
def small_supervisord() -> Iterator[Supervisord]:
    """Run a supervisord with two programs (three processes) and an HTTP server with auth."""
    binary = require_tool("supervisord")
    # Unix socket paths are limited to ~108 bytes: pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="mwf", dir="/tmp")
    port, password = free_port(), uuid.uuid4().hex
    config = f"{directory}/supervisord.conf"
    text = _SUPERVISORD_CONF.format(port=port, password=password, python=sys.executable)
    Path(config).write_text(text)
    Path(f"{directory}/password").write_text(password + "\n")
    process = subprocess.Popen(
        [binary, "-c", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    server = Supervisord(
        directory, config, f"{directory}/supervisor.sock", port, "mw", password,
        f"{directory}/password", process,
    )  # fmt: skip
    try:
        _wait_up(server)
        server.wait_states({"worker:worker_00": "RUNNING", "scheduler:scheduler": "RUNNING"})
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def health_server() -> AsyncIterator[int]:
    """Serve `GET /health` → `{"status": "ok"}` on a free port; yield the port."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port
    finally:
        await runner.cleanup()
