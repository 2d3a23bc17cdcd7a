"""Receiver core test helpers: payload factory, a scriptable channel, stores, a running app."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import aiohttp
import psycopg
import pytest
import structlog
from aiohttp import web

from receiver.app import intake_rules, make_app
from receiver.config import IntakeConfig, PostgresStore, ReceiverBase, load_config_text
from receiver.delivery.channels import (
    REGISTRY,
    Channel,
    ChannelConfig,
    DeliveryError,
    DeliveryReceipt,
    Notification,
)
from receiver.store import IntakeRules, Store, Wanted, make_store
from receiver.store.dialect import Dialect
from receiver.store.tx import Params, Row
from tests.conftest import free_port

# A claim that takes every due row, whatever its channel (store tests drive claims by hand).
EVERYTHING = Wanted({}, per_recipient=1, strays=10_000)

# Real Alertmanager 0.25 captures (tests/fixtures/alertmanager/README.md says how they were made).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
T0 = 1_795_000_000.0  # a fixed "now" for fake clocks (2026-11-18)
LOG = structlog.get_logger("test")


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def fixture_bytes(name: str) -> bytes:
    """Return a captured Alertmanager payload."""
    return (FIXTURES / name).read_bytes()


def alert(
    fp: str,
    status: str = "firing",
    starts: str = "2026-11-22T12:00:00Z",
    ends: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    """Return one webhook alert."""
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", "severity": "critical", **labels},
        "annotations": {"summary": f"alert {fp}"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prom:9090/graph",
        "fingerprint": fp,
    }


def payload(
    *alerts: dict[str, Any],
    group: str = '{}:{alertname="DiskFull"}',
    receiver: str = "hook",
    truncated: int = 0,
    **common: str,
) -> dict[str, Any]:
    """Return a webhook body holding `alerts`; `common` adds common labels."""
    firing = any(a["status"] == "firing" for a in alerts)
    labels = {"alertname": "DiskFull", "severity": "critical", **common}
    return {
        "receiver": receiver,
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": labels["alertname"]},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://am:9093",
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": truncated,
    }


Behaviour = Literal["ok", "retry", "fail", "hang", "crash"]


class ScriptConfig(ChannelConfig):
    """Config of the scriptable test channel."""

    type: Literal["script", "script_sms"]


@dataclass
class Script:
    """What each scripted channel does next, and what it delivered."""

    plan: dict[str, list[Behaviour]] = field(default_factory=dict)
    sent: dict[str, list[Notification]] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)

    def next(self, channel: str) -> Behaviour:
        """Pop the channel's next behaviour (ok when the plan is empty)."""
        self.calls[channel] = self.calls.get(channel, 0) + 1
        queue = self.plan.get(channel, [])
        return queue.pop(0) if queue else "ok"


class ScriptChannel(Channel[ScriptConfig]):
    """A test-only channel whose outcomes the test scripts; records what it sent."""

    kind = "script"
    config_type = ScriptConfig
    script: ClassVar[Script] = Script()

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Fail, hang or deliver as scripted."""
        behaviour = self.script.next(self.name)
        if behaviour == "retry":
            raise DeliveryError("provider answered 503", retryable=True)
        if behaviour == "fail":
            raise DeliveryError("invalid recipient", retryable=False)
        if behaviour == "hang":
            await asyncio.sleep(3600)
        if behaviour == "crash":
            raise RuntimeError("template bug")
        self.script.sent.setdefault(self.name, []).append(notification)
        return DeliveryReceipt(provider_id=f"p{notification.id}")


class ScriptSmsChannel(ScriptChannel):
    """The scriptable channel with SMS delivery semantics."""

    kind = "script_sms"
    at_most_once = True


def register_script(monkeypatch: pytest.MonkeyPatch) -> Script:
    """Register the scripted channels for one test and return their shared script."""
    fresh = Script()
    monkeypatch.setattr(ScriptChannel, "script", fresh)
    monkeypatch.setitem(REGISTRY, "script", ScriptChannel)
    monkeypatch.setitem(REGISTRY, "script_sms", ScriptSmsChannel)
    return fresh


OPEN_WEBHOOK = "webhook: {auth: none}\n"


def open_webhook(config_text: str) -> str:
    """Return config text that takes unauthenticated webhooks unless it says how to auth.

    The receiver refuses a config without `webhook.auth`; most tests post without
    credentials, so their configs spell out `auth: none` through this helper.
    """
    return config_text if "webhook:" in config_text else config_text + OPEN_WEBHOOK


BASE_CONFIG = """
webhook: {auth: none}
channels:
  - {name: pager, type: script}
  - {name: chat, type: script}
  - {name: sms, type: script_sms}
  - {name: backup, type: script}
routes:
  - {name: db, matchers: ['team="db"'], channels: [chat]}
  - {name: crit, matchers: ['severity="critical"'], channels: [pager]}
default_route: {channels: [chat]}
delivery: {max_attempts: 3, backoff_initial: 10s, backoff_max: 60s, send_timeout: 5s,
           give_up_after: 1h}
sms_rate_limit: {max_messages: 2, window: 10m}
"""


@asynccontextmanager
async def postgres_database(name: str) -> AsyncIterator[str]:
    """Create database `name` for one test; drop it WITH (FORCE) afterwards."""
    admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True)
    async with admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    finally:
        admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True)
        async with admin:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def store_yaml(kind: str, tmp_path: Path, dsn: str) -> str:
    """Return the `store:` section for a backend."""
    if kind == "sqlite":
        return f"store: {{type: sqlite, path: {tmp_path / 'receiver.db'}}}\n"
    return f"store: {{type: postgres, dsn: '{dsn}'}}\n"


@asynccontextmanager
async def store_dsn(kind: str, unique: str) -> AsyncIterator[str]:
    """Yield a DSN for a fresh PostgreSQL database, or '' for SQLite."""
    if kind == "sqlite":
        yield ""
        return
    async with postgres_database(unique) as dsn:
        yield dsn


@asynccontextmanager
async def opened_store(kind: str, tmp_path: Path, unique: str) -> AsyncIterator[Store]:
    """Yield an opened store of `kind` with its own file or database."""
    async with store_dsn(kind, unique) as dsn:
        config = PostgresStore(type="postgres", dsn=dsn) if dsn else None
        store = make_store(config) if config else make_store_sqlite(tmp_path)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


def make_store_sqlite(tmp_path: Path) -> Store:
    """Return an unopened SQLite store in tmp_path."""
    from receiver.config import SqliteStore

    return make_store(SqliteStore(path=tmp_path / "receiver.db"))


def rules_for(config_text: str) -> IntakeRules:
    """Return intake rules for a config text."""
    return intake_rules(load_config_text(open_webhook(config_text)))


@dataclass
class Running:
    """A receiver app served on a free port."""

    app: web.Application
    url: str
    http: aiohttp.ClientSession
    config: ReceiverBase

    async def post(
        self, body: bytes | dict[str, Any], token: str | None = None, **headers: str
    ) -> aiohttp.ClientResponse:
        """POST a webhook body (bytes or a dict turned into JSON)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.post(
            f"{self.url}/webhooks/alertmanager", data=data, headers=headers
        ) as response:
            await response.read()
            return response


def in_process(config: ReceiverBase) -> ReceiverBase:
    """Apply webhooks in the request unless the config chooses: in-process tests drive fake
    clocks and hand-run workers and expect a webhook's effect once it is answered."""
    if "intake" in config.model_fields_set:
        return config
    return config.model_copy(update={"intake": IntakeConfig(mode="direct")})


@asynccontextmanager
async def running(
    config_text: str,
    clock: Callable[[], float] = time.time,
    run_worker: bool = False,
    port: int | None = None,
) -> AsyncIterator[Running]:
    """Serve a receiver app built from config text on 127.0.0.1:<free port>."""
    config = in_process(load_config_text(open_webhook(config_text)))
    app = make_app(config, LOG, clock=clock, run_worker=run_worker)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Running(app, f"http://127.0.0.1:{port}", http, config)
    finally:
        await runner.cleanup()


async def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition"
) -> Any:
    """Poll an (async or sync) predicate until truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def answers_200(http: aiohttp.ClientSession, url: str) -> Callable[[], Any]:
    """Return a `wait_for` predicate: true once GET `url` answers 200 (refused: not yet)."""

    async def probe() -> bool:
        try:
            async with http.get(url) as response:
                return response.status == 200
        except aiohttp.ClientConnectionError:
            return False

    return probe


class RecordingTx:
    """A transaction that records what reaches the database."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.sent: list[tuple[str, str, Any]] = []

    async def execute(self, sql: str, params: Params = ()) -> int:
        self.sent.append(("execute", sql, params))
        return 1

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        self.sent.append(("fetchone", sql, params))
        return None

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        self.sent.append(("fetchall", sql, params))
        return []

    async def executemany(self, sql: str, params: Any) -> None:
        self.sent.append(("executemany", sql, list(params)))
