"""Connection limits of the HTTP server: a cap below the fd limit, and read deadlines.

aiohttp reads request headers without a deadline and keeps a connection for as long as its
peer trickles bytes, so a few hundred slow or half-open connections can take every file
descriptor and starve Alertmanager's real webhooks. `GuardedSite` wraps each connection:

- past `max_connections` open connections a new one is closed at once (Alertmanager retries),
  before the process reaches its fd limit and `accept()` starts failing;
- a connection must deliver a request's headers within `header_timeout` of connecting or of
  sending the first byte after its previous request, else it is closed;
- a request whose handler runs longer than `request_timeout` (a body that trickles in, say)
  gets its connection closed.

The `track` middleware tells the guard when a request's headers arrived and when it ended.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from pydantic import Field

from maintwatch.configload import Duration, StrictModel

FD_RESERVE = 64  # descriptors kept for the store, channels, logs and outgoing connections
SWEEP_EVERY = 0.5
REPORT_EVERY = 10.0  # seconds between two log lines about the same connection trouble


class ServerConfig(StrictModel):
    """Limits on the connections the receiver's HTTP server accepts."""

    max_connections: int | None = Field(default=None, ge=1)  # default: below the fd limit
    header_timeout: Duration = Field(default=10.0, gt=0)
    request_timeout: Duration = Field(default=60.0, gt=0)
    keepalive_timeout: Duration = Field(default=75.0, gt=0)


def default_max_connections() -> int:
    """Return a cap that leaves FD_RESERVE descriptors of the soft limit free."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10_000
    return max(16, min(10_000, soft - FD_RESERVE))


@dataclass
class _Conn:
    transport: asyncio.Transport
    waiting_since: float | None  # when the headers it owes us started to be due
    busy_since: float | None = None


@dataclass
class ConnectionGuard:
    """Count connections and enforce the deadlines (see the module docstring)."""

    config: ServerConfig
    logger: Any
    clock: Callable[[], float] = time.monotonic
    conns: dict[asyncio.BaseTransport, _Conn] = field(default_factory=dict)
    refused: int = 0
    closed_slow: int = 0

    @property
    def limit(self) -> int:
        """Return the connection cap."""
        return self.config.max_connections or default_max_connections()

    def admit(self, transport: asyncio.Transport) -> bool:
        """Register a new connection; False (and count it) when the cap is reached."""
        if len(self.conns) >= self.limit:
            self.refused += 1
            return False
        self.conns[transport] = _Conn(transport, self.clock())
        return True

    def data(self, transport: asyncio.BaseTransport) -> None:
        """Note bytes from an idle connection: the next request's headers are now due."""
        conn = self.conns.get(transport)
        if conn is not None and conn.busy_since is None and conn.waiting_since is None:
            conn.waiting_since = self.clock()

    def started(self, transport: asyncio.BaseTransport | None) -> None:
        """Note that a request's headers arrived."""
        conn = self.conns.get(transport) if transport is not None else None
        if conn is not None:
            conn.busy_since, conn.waiting_since = self.clock(), None

    def ended(self, transport: asyncio.BaseTransport | None) -> None:
        """Note that a request was answered; the connection is idle (keep-alive)."""
        conn = self.conns.get(transport) if transport is not None else None
        if conn is not None:
            conn.busy_since = None

    def gone(self, transport: asyncio.BaseTransport) -> None:
        """Forget a closed connection."""
        self.conns.pop(transport, None)

    def sweep(self) -> int:
        """Close connections past a deadline; return how many."""
        now, closed = self.clock(), 0
        for conn in list(self.conns.values()):
            late_headers = (
                conn.waiting_since is not None
                and now - conn.waiting_since > self.config.header_timeout
            )
            late_request = (
                conn.busy_since is not None and now - conn.busy_since > self.config.request_timeout
            )
            if late_headers or late_request:
                conn.transport.abort()
                self.gone(conn.transport)
                closed += 1
        self.closed_slow += closed
        return closed


class _GuardedProtocol(asyncio.Protocol):
    """Pass everything to aiohttp's protocol; tell the guard about the connection."""

    def __init__(self, inner: asyncio.Protocol, guard: ConnectionGuard) -> None:
        self._inner, self._guard = inner, guard
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream server's transport; uvloop's do not derive from asyncio's classes.
        transport = cast(asyncio.Transport, transport)
        if not self._guard.admit(transport):
            transport.abort()  # before aiohttp sees it: nothing to clean up there
            return
        self._transport = transport
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._transport is not None:
            self._guard.data(self._transport)
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._transport is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._guard.gone(self._transport)
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._transport is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._transport is not None:
            self._inner.resume_writing()


def track(guard: ConnectionGuard) -> Any:
    """Return middleware marking when each request's headers arrived and when it ended."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        transport = request.transport  # once: a property reaching through the protocol
        guard.started(transport)
        try:
            return await handler(request)
        finally:
            guard.ended(transport)

    return middleware


class GuardedSite(web.BaseSite):
    """A TCP site whose connections go through a ConnectionGuard."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard
    ) -> None:
        super().__init__(runner)
        self._host, self._port, self._guard = host, port, guard
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        """Return the URL served."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        """Listen, and sweep slow connections until stopped."""
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _GuardedProtocol(server(), self._guard),
            self._host or None,
            self._port,
            reuse_address=True,
        )
        self._sweeper = asyncio.create_task(self._sweep(), name="connection-sweeper")

    async def stop(self) -> None:
        """Stop sweeping and listening."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        await super().stop()

    async def _sweep(self) -> None:
        report = Throttled(self._guard.logger, REPORT_EVERY)
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            closed = self._guard.sweep()
            refused, self._guard.refused = self._guard.refused, 0
            if closed or refused:
                report.warning(
                    "connections_limited",
                    closed_slow=closed,
                    refused_over_cap=refused,
                    open=len(self._guard.conns),
                    cap=self._guard.limit,
                )


class Throttled:
    """Log each event (by key) at most once per `every` seconds; say how many were held back."""

    def __init__(
        self, logger: Any, every: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._log, self._every, self._clock = logger, every, clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, event: str, key: str = "", **fields: Any) -> None:
        """Log now, or count it towards `held_back` of the next line of the same key."""
        key = key or event
        now = self._clock()
        if now - self._last.get(key, float("-inf")) < self._every:
            self._held[key] = self._held.get(key, 0) + 1
            return
        self._last[key] = now
        self._log.warning(event, held_back=self._held.pop(key, 0), **fields)


def exception_handler(logger: Any) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    """Return a loop exception handler logging each kind of message at most every few seconds.

    At the fd limit asyncio reports every failed `accept()` with a traceback, thousands a
    second (46 MB of log in 30 s were seen): one line per REPORT_EVERY says the same.
    """
    report = Throttled(logger, REPORT_EVERY)

    def handle(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "event loop error"))
        error = context.get("exception")
        reason = f"{type(error).__name__}: {error}" if error is not None else ""
        report.warning("event_loop_error", key=message, message=message, reason=reason)

    return handle
