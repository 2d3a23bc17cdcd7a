"""Connecting to Redis: password file, TLS, unix socket, and an outage through the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from exporter.collectors.redis_queues.collector import RedisQueuesCollector
from exporter.runtime import InstanceState, Runtime
from tests.exporter import _redis_helpers as h
from tests.exporter.conftest import refresh

make_collector = h.make_collector
private_redis = h.private_redis
Make = Callable[[str], RedisQueuesCollector]


def is_up(state: InstanceState) -> bool:
    """Read `up` afresh (a plain attribute read would be narrowed by mypy across awaits)."""
    return state.up


def _seed(server: h.PrivateRedis) -> None:
    client = server.client()
    try:
        h.laravel_push(client, "", "default", h.laravel_payload(1_700_000_000))
    finally:
        client.close()


async def test_tls_with_private_ca_and_password_file(
    private_redis: h.PrivateRedis, make_collector: Make
) -> None:
    _seed(private_redis)
    collector = make_collector(
        f"  - name: tls\n    url: 'rediss://127.0.0.1:{private_redis.tls_port}/0'\n"
        f"    ca_file: {private_redis.ca_file}\n"
        f"    password_file: {private_redis.password_file}\n    prefix: ''\n"
    )
    samples = await refresh(collector)
    assert samples.get("maintwatch_queue_jobs", queue="default", state="pending") == 1


async def test_unix_socket_with_password_in_url(
    private_redis: h.PrivateRedis, make_collector: Make
) -> None:
    _seed(private_redis)
    url = f"unix://:{private_redis.password}@{private_redis.socket}?db=0"
    collector = make_collector(f"  - {{name: sock, url: '{url}', prefix: '', queues: [default]}}\n")
    samples = await refresh(collector)
    assert samples.get("maintwatch_queue_jobs", queue="default", state="pending") == 1


async def test_wrong_password_is_a_clear_failure(
    private_redis: h.PrivateRedis, make_collector: Make
) -> None:
    url = f"redis://:wrong@127.0.0.1:{private_redis.port}/0"
    collector = make_collector(f"  - {{name: bad, url: '{url}', prefix: ''}}\n")
    rt = Runtime(structlog.get_logger("test"))
    try:
        await rt.apply([(collector, 3600.0, 5.0)])
        await rt.wait_ready()
        (state,) = rt.states()
        assert not state.up
        assert "AuthenticationError" in state.last_error
        assert "wrong" not in state.last_error  # the password never reaches logs
    finally:
        await rt.close()


async def test_redis_down_then_back(private_redis: h.PrivateRedis, make_collector: Make) -> None:
    _seed(private_redis)
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    collector = make_collector(
        f"  - name: main\n    url: '{url}'\n    password_file: {private_redis.password_file}\n"
        "    prefix: ''\n    queues: [default]\n    timeout: 5s\n"
    )
    rt = Runtime(structlog.get_logger("test"))
    try:
        await rt.apply([(collector, 3600.0, 5.0)])
        await rt.wait_ready()
        (state,) = rt.states()
        assert is_up(state)
        private_redis.stop()
        await rt.refresh_once(state)
        assert not is_up(state)
        assert "ConnectionError" in state.last_error
        names = {f.name for f in rt.families()}
        assert "maintwatch_queue_jobs" not in names
        up = [s for f in rt.families() for s in f.samples if s.name == "maintwatch_collector_up"]
        assert [(s.labels["collector"], s.value) for s in up] == [("redis", 0.0)]
        # An empty server comes back on the same port: the same client reconnects.
        await asyncio.to_thread(private_redis.start)
        await rt.refresh_once(state)
        assert is_up(state), state.last_error
        samples = [s for f in rt.families() for s in f.samples if s.name == "maintwatch_queue_jobs"]
        assert {(s.labels["queue"], s.labels["state"], s.value) for s in samples} == {
            ("default", "pending", 0.0),
            ("default", "delayed", 0.0),
            ("default", "reserved", 0.0),
        }
    finally:
        await rt.close()


async def test_a_user_without_eval_keeps_counts_and_loses_only_the_oldest_time(
    private_redis: h.PrivateRedis, make_collector: Make
) -> None:
    _seed(private_redis)
    admin = private_redis.client()
    try:
        admin.acl_setuser(
            "noeval", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-eval"]
        )
    finally:
        admin.close()
    url = f"redis://noeval:pw@127.0.0.1:{private_redis.port}/0"
    collector = make_collector(f"  - {{name: acl, url: '{url}', prefix: '', queues: [default]}}\n")
    with structlog.testing.capture_logs() as logs:
        samples = await refresh(collector)
        await refresh(collector)
    assert samples.get("maintwatch_queue_jobs", queue="default", state="pending") == 1
    oldest = samples.get("maintwatch_queue_oldest_job_timestamp_seconds", queue="default")
    assert oldest is None
    unreadable = [e for e in logs if e["event"] == "oldest_job_unreadable"]
    assert len(unreadable) == 1
    assert "no permissions to run the 'eval' command" in unreadable[0]["reason"]
