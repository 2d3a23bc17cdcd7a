"""The fault matrix's world: every collector type against real sources, in ONE Runtime,
served by the real HTTP app, with every network source behind a FaultProxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis
import structlog
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from exporter.cli import build_collectors
from exporter.collectors.backups.collector import BackupsCollector, _Scan
from exporter.collectors.base import Collector, Context
from exporter.collectors.registry import load_config_text
from exporter.runtime import InstanceState, Runtime
from exporter.server import make_app
from tests.conftest import free_port
from tests.exporter._backups_helpers import mysqldump_text
from tests.exporter._db_helpers import MYSQL_SCHEMA, PG_SCHEMA, my_admin, pg_admin
from tests.exporter._fault_helpers import FaultProxy, fault_proxy, health_server, small_supervisord
from tests.exporter._supervisor_helpers import Supervisord
from tests.exporter._tls_helpers import Pki, serve_tls

INTERVAL = 0.2  # every instance refreshes five times a second: faults show up fast
TARGET_TIMEOUT = 1.0  # the faulted instance's timeout (a "slow" fault costs this per refresh)
OTHER_TIMEOUT = 10.0  # the bystanders': a loaded CI machine must not fail them spuriously
Key = tuple[str, str]


class RacingBackups(BackupsCollector):
    """A backup set whose armed victim file is deleted right after the directory scan."""

    victim: Path | None = None

    def _scan_blocking(self, settled_before_ns: int) -> _Scan:
        result = super()._scan_blocking(settled_before_ns)
        newest = result[0].newest
        if self.victim is not None and newest is not None and newest.path == str(self.victim):
            self.victim.unlink()  # listed and stat'ed a moment ago; gone before it is verified
            self.victim = None
        return result


@dataclass
class Databases:
    """Module-wide servers: a PostgreSQL and a MariaDB database, and a supervisord."""

    pg: str
    my: str
    supervisord: Supervisord


@dataclass
class World:
    """Everything one matrix cell runs against."""

    root: Path
    prefix: str
    dbs: Databases
    proxies: dict[str, FaultProxy]
    pki: Pki
    runtime: Runtime
    url: str
    backups: RacingBackups

    def path(self, *parts: str) -> Path:
        """Return a path under the world's directory."""
        return self.root.joinpath(*parts)

    def state(self, key: Key) -> InstanceState:
        """Return the runtime state of one instance."""
        return next(s for s in self.runtime.states() if s.key == key)

    async def scrape(self) -> tuple[int, dict[str, list[tuple[dict[str, str], float]]]]:
        """GET /metrics from the real server; return (status, samples by name)."""
        async with aiohttp.ClientSession() as http, http.get(self.url) as resp:
            status, text = resp.status, await resp.text()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, []).append((dict(s.labels), float(s.value)))
        return status, out


def value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float | None:
    """Return the first sample of `name` whose labels include `labels`, or None."""
    for have, v in samples.get(name, []):
        if all(have.get(k) == want for k, want in labels.items()):
            return v
    return None


async def until(check: Callable[[], Any], what: str, deadline: float = 30.0) -> Any:
    """Poll `check` (sync or async) until truthy; fail naming `what` after `deadline` s."""
    end = time.monotonic() + deadline
    while True:
        got = check()
        if asyncio.iscoroutine(got):
            try:  # a check that hangs (a scrape of a stalled server) must not outlive the deadline
                async with asyncio.timeout(max(end - time.monotonic(), 0.1)):
                    got = await got
            except TimeoutError:
                raise AssertionError(f"{what}: check still running after {deadline:g}s") from None
        if got:
            return got
        if time.monotonic() > end:
            raise AssertionError(f"{what}: not reached within {deadline:g}s")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def databases() -> Iterator[Databases]:
    """Create one PostgreSQL and one MariaDB database with Laravel's tables, and supervisord."""
    name = "mwf" + uuid.uuid4().hex[:10]
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    admin_my = my_admin()
    try:
        with pg_admin(name) as conn:
            for statement in PG_SCHEMA:
                conn.execute(statement.encode())  # fixed test DDL, not user input
        with admin_my.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute(f"USE `{name}`")
            for statement in MYSQL_SCHEMA:
                cur.execute(statement)
        with small_supervisord() as sv:
            yield Databases(name, name, sv)
    finally:
        with admin_my.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin_my.close()
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _files(root: Path, prefix: str) -> None:
    backups = root / "backups"
    backups.mkdir()
    for day in (1, 2, 3):
        path = backups / f"tongacp_db_2025-05-0{day}.sql.gz"
        path.write_bytes(gzip.compress(mysqldump_text(200 * day)))
        when = time.time() - (4 - day) * 86400
        os.utime(path, (when, when))
    for d in ("app/storage/logs", "app/storage/framework", "app/public/uploads", "mysql", "certs"):
        (root / d).mkdir(parents=True)
    (root / "app/storage/logs/laravel.log").write_text("")
    (root / "mysql/slow.log").write_text("")
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        for queue in ("default", "mail"):
            client.rpush(f"{prefix}queues:{queue}", '{"job":"x"}')
    finally:
        client.close()


def _config(w: World) -> str:
    p, root = w.proxies, w.root
    return f"""
backups:
  - {{name: db, directory: {root}/backups, glob: "tongacp_db_*.sql.gz", settle: 0s}}
redis:
  - {{name: queues, url: "redis://127.0.0.1:{p["redis"].port}/0", prefix: "{w.prefix}",
      queues: [default, mail], timeout: {TARGET_TIMEOUT}s}}
databases:
  - {{name: pg, driver: postgres, dsn: "postgresql://postgres@127.0.0.1:{p["pg"].port}/{w.dbs.pg}",
      failed_jobs: true, connect_timeout: 1s, statement_timeout: 1s}}
  - {{name: my, driver: mysql, dsn: "mysql://root@127.0.0.1:{p["my"].port}/{w.dbs.my}",
      failed_jobs: true, connect_timeout: 1s, statement_timeout: 1s}}
supervisor:
  - {{name: workers, url: "http://127.0.0.1:{p["supervisor"].port}", username: mw,
      password_file: {w.dbs.supervisord.password_file}, timeout: {TARGET_TIMEOUT}s}}
tls:
  - {{name: endpoint, endpoint: "127.0.0.1:{p["tls"].port}", server_name: localhost,
      ca_file: {root}/certs/root.pem, timeout: {TARGET_TIMEOUT}s}}
  - {{name: file, path: {root}/certs/site.pem, ca_file: {root}/certs/root.pem}}
http:
  - {{name: health, url: "http://127.0.0.1:{p["http"].port}/health", json_field: status,
      json_value: ok, timeout: {TARGET_TIMEOUT}s}}
apps:
  - name: portal
    path: {root}/app
    logs: [{{path: storage/logs/laravel.log}}]
    directories: [{{name: uploads, path: public/uploads}}]
slowlog:
  - {{name: my, path: {root}/mysql/slow.log}}
"""


def _timed(
    built: list[tuple[Collector[Any], float, float]], context: Context, target: Key
) -> list[tuple[Collector[Any], float, float]]:
    out: list[tuple[Collector[Any], float, float]] = []
    for collector, _, _ in built:
        if isinstance(collector, BackupsCollector):
            collector = RacingBackups(collector.config, context)
        key = (collector.kind, collector.name)
        out.append((collector, INTERVAL, TARGET_TIMEOUT if key == target else OTHER_TIMEOUT))
    return out


@contextlib.asynccontextmanager
async def running_world(root: Path, dbs: Databases, target: Key) -> AsyncIterator[World]:
    """Start the sources, proxies, one Runtime with every collector and the HTTP server."""
    prefix = f"mw{uuid.uuid4().hex[:10]}:"
    _files(root, prefix)
    pki = Pki(root / "certs")
    pki.root_file()
    leaf = pki.leaf("localhost")
    pki.write("site.pem", leaf.pem(), pki.intermediate.pem())
    async with contextlib.AsyncExitStack() as stack:
        tls_port = await stack.enter_async_context(serve_tls(pki.server_context(leaf)))
        http_port = await stack.enter_async_context(health_server())
        upstreams = {
            "redis": 6379, "pg": 5432, "my": 3306, "supervisor": dbs.supervisord.port,
            "tls": tls_port, "http": http_port,
        }  # fmt: skip
        proxies = {
            name: await stack.enter_async_context(fault_proxy(("127.0.0.1", port)))
            for name, port in upstreams.items()
        }
        log = structlog.get_logger("matrix")
        runtime = Runtime(log)
        w = World(root, prefix, dbs, proxies, pki, runtime, "", None)  # type: ignore[arg-type]
        context = Context(logger=log, state_dir=str(root / "state"))
        config = load_config_text(_config(w), "matrix.yml")
        wanted = _timed(build_collectors(config, context), context, target)
        w.backups = next(c for c, _, _ in wanted if isinstance(c, RacingBackups))
        stack.push_async_callback(runtime.close)
        stack.push_async_callback(_clean_redis, prefix)
        await runtime.apply(wanted)
        runner = web.AppRunner(make_app(runtime), access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        w.url = f"http://127.0.0.1:{port}/metrics"
        yield w


async def _clean_redis(prefix: str) -> None:
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
