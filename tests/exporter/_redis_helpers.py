"""Redis test helpers: per-test key prefixes, a private redis-server, framework-style enqueues.

The enqueue functions write the exact structures each framework writes (key names, types,
payload fields, push side), so the collector is tested against what production Redis holds.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import trustme

from exporter.collectors.base import Context
from exporter.collectors.redis_queues.collector import RedisQueueConfig, RedisQueuesCollector
from exporter.collectors.registry import load_config_text
from tests.conftest import free_port, require_tool

SHARED_URL = "redis://127.0.0.1:6379/0"


def _bytes(value: Any) -> bytes:
    """Narrow a sync redis-py reply (typed as maybe-awaitable) to bytes."""
    assert isinstance(value, bytes), value
    return value


@pytest.fixture
def rdb(unique: str) -> Iterator[redis.Redis]:
    """Return a client of the shared local Redis; delete this test's keys afterwards."""
    client = redis.Redis(host="127.0.0.1", port=6379, db=0)
    try:
        yield client
    finally:
        keys = list(client.scan_iter(match=f"{unique}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()


def redis_config(section: str) -> RedisQueueConfig:
    """Validate one `redis:` instance written as YAML (indented list item text)."""
    config = load_config_text(f"redis:\n{section}", "x.yml")
    instance = config.instances()["redis"][0]
    assert isinstance(instance, RedisQueueConfig)
    return instance


@pytest.fixture
async def make_collector(context: Context) -> AsyncIterator[Callable[[str], RedisQueuesCollector]]:
    """Build collectors from YAML and close them all at teardown."""
    made: list[RedisQueuesCollector] = []

    def make(section: str) -> RedisQueuesCollector:
        collector = RedisQueuesCollector(redis_config(section), context)
        made.append(collector)
        return collector

    yield make
    for collector in made:
        await collector.close()


# --- Laravel (Illuminate\Queue\RedisQueue + LuaScripts) -------------------------------------


def laravel_payload(created_at: int, job: str = "App\\Jobs\\SendReport") -> str:
    """Return a Laravel 11 object job payload as Queue::createObjectPayload builds it."""
    return json.dumps(
        {
            "uuid": str(uuid.uuid4()),
            "displayName": job,
            "job": "Illuminate\\Queue\\CallQueuedHandler@call",
            "maxTries": 3,
            "maxExceptions": None,
            "failOnTimeout": False,
            "backoff": None,
            "timeout": None,
            "retryUntil": None,
            "data": {"commandName": job, "command": 'O:21:"App\\Jobs\\SendReport":0:{}'},
            "createdAt": created_at,
            "id": uuid.uuid4().hex,
            "attempts": 0,
        }
    )


def laravel_push(r: redis.Redis, prefix: str, queue: str, payload: str) -> None:
    """Push like LuaScripts::push: RPUSH the payload and a token on the notify list."""
    r.rpush(f"{prefix}queues:{queue}", payload)
    r.rpush(f"{prefix}queues:{queue}:notify", 1)


def laravel_later(r: redis.Redis, prefix: str, queue: str, payload: str, at: float) -> None:
    """Delay like RedisQueue::laterRaw: ZADD queues:<q>:delayed <available_at> <payload>."""
    r.zadd(f"{prefix}queues:{queue}:delayed", {payload: at})


def laravel_reserve(r: redis.Redis, prefix: str, queue: str, retry_after: float) -> None:
    """Reserve like LuaScripts::pop: LPOP, bump attempts, ZADD to :reserved, LPOP notify."""
    raw = _bytes(r.lpop(f"{prefix}queues:{queue}"))
    job = json.loads(raw)
    job["attempts"] += 1
    r.zadd(f"{prefix}queues:{queue}:reserved", {json.dumps(job): time.time() + retry_after})
    r.lpop(f"{prefix}queues:{queue}:notify")


# --- BullMQ (addStandardJob / moveToActive / moveToFinished Lua scripts) --------------------


def bullmq_add(
    r: redis.Redis, prefix: str, queue: str, delay_ms: int = 0, priority: int = 0
) -> str:
    """Add a job: job hash, id counter, meta, events; then wait/delayed/prioritized."""
    base = f"{prefix}{queue}"
    job_id = str(r.incr(f"{base}:id"))
    now_ms = int(time.time() * 1000)
    r.hset(
        f"{base}:{job_id}",
        mapping={
            "name": "render",
            "data": json.dumps({"page": job_id}),
            "opts": json.dumps({"attempts": 3, "delay": delay_ms, "priority": priority}),
            "timestamp": now_ms,
            "delay": delay_ms,
            "priority": priority,
        },
    )
    r.hsetnx(f"{base}:meta", "opts.maxLenEvents", "10000")
    r.xadd(f"{base}:events", {"event": "added", "jobId": job_id, "name": "render"})
    if delay_ms:
        r.zadd(f"{base}:delayed", {job_id: (now_ms + delay_ms) * 0x1000 + int(job_id) % 0x1000})
    elif priority:
        counter: int = r.incr(f"{base}:pc")  # type: ignore[assignment]  # sync client
        r.zadd(f"{base}:prioritized", {job_id: priority * 0x100000000 + counter % 0x100000000})
    else:
        r.lpush(f"{base}:wait", job_id)
    return job_id


def bullmq_take(r: redis.Redis, prefix: str, queue: str) -> str:
    """Move the oldest waiting job to active (RPOPLPUSH wait active)."""
    return _bytes(r.rpoplpush(f"{prefix}{queue}:wait", f"{prefix}{queue}:active")).decode()


def bullmq_fail(r: redis.Redis, prefix: str, queue: str, job_id: str) -> None:
    """Finish an active job as failed: LREM active, ZADD failed <finishedOn>."""
    r.lrem(f"{prefix}{queue}:active", -1, job_id)
    r.zadd(f"{prefix}{queue}:failed", {job_id: int(time.time() * 1000)})


# --- RQ (Queue.enqueue_job, registries) ------------------------------------------------------


def rq_enqueue(r: redis.Redis, prefix: str, queue: str) -> str:
    """Enqueue: job hash, SADD rq:queues, RPUSH rq:queue:<q> <id>."""
    job_id = str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    r.hset(
        f"{prefix}rq:job:{job_id}",
        mapping={
            "created_at": stamp,
            "enqueued_at": stamp,
            "origin": queue,
            "status": "queued",
            "description": "tasks.resize(1)",
            "data": b"\x80\x05N.",
        },
    )
    r.sadd(f"{prefix}rq:queues", f"rq:queue:{queue}")
    r.rpush(f"{prefix}rq:queue:{queue}", job_id)
    return job_id


def rq_registry_add(r: redis.Redis, prefix: str, registry: str, queue: str, member: str) -> None:
    """Add to a registry zset (wip members are `<job_id>:<execution_id>`)."""
    r.zadd(f"{prefix}rq:{registry}:{queue}", {member: time.time() + 60})


# --- Sidekiq (Client#atomic_push) ------------------------------------------------------------


def sidekiq_job(queue: str, enqueued_at: float | int | None) -> dict[str, Any]:
    """Return a Sidekiq job hash."""
    job: dict[str, Any] = {
        "class": "HardWorker",
        "args": [1, "bob"],
        "retry": True,
        "queue": queue,
        "jid": uuid.uuid4().hex[:24],
        "created_at": time.time(),
    }
    if enqueued_at is not None:
        job["enqueued_at"] = enqueued_at
    return job


def sidekiq_push(r: redis.Redis, prefix: str, queue: str, job: dict[str, Any]) -> None:
    """Push like atomic_push: SADD queues <q>, LPUSH queue:<q> <json>."""
    r.sadd(f"{prefix}queues", queue)
    r.lpush(f"{prefix}queue:{queue}", json.dumps(job))


def sidekiq_zadd(r: redis.Redis, prefix: str, zset: str, job: dict[str, Any], at: float) -> None:
    """Add a job to the schedule, retry or dead sorted set."""
    r.zadd(f"{prefix}{zset}", {json.dumps(job): at})


# --- Celery (kombu.transport.redis Channel._put / basic_consume) -----------------------------


def celery_message(task: str = "proj.tasks.add", priority: int = 0) -> str:
    """Return a kombu message (Celery protocol 2) as the Redis transport stores it."""
    body = base64.b64encode(json.dumps([[2, 2], {}, {}]).encode()).decode()
    task_id = str(uuid.uuid4())
    return json.dumps(
        {
            "body": body,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"lang": "py", "task": task, "id": task_id, "retries": 0},
            "properties": {
                "correlation_id": task_id,
                "delivery_mode": 2,
                "delivery_info": {"exchange": "", "routing_key": "celery"},
                "priority": priority,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
    )


def celery_put(r: redis.Redis, prefix: str, queue: str, priority: int = 0) -> None:
    """LPUSH to the queue, or to `<q>\\x06\\x16<step>` for a non-zero priority step."""
    key = f"{prefix}{queue}" if not priority else f"{prefix}{queue}\x06\x16{priority}"
    r.lpush(key, celery_message(priority=priority))


def celery_deliver(r: redis.Redis, prefix: str, queue: str) -> None:
    """Hand a message to a worker: BRPOP it, then HSET unacked + ZADD unacked_index."""
    raw = _bytes(r.rpop(f"{prefix}{queue}"))
    tag = json.loads(raw)["properties"]["delivery_tag"]
    r.hset(f"{prefix}unacked", tag, json.dumps([json.loads(raw), "", queue]))
    r.zadd(f"{prefix}unacked_index", {tag: time.time()})


# --- A private redis-server: password, TLS and a unix socket --------------------------------


@dataclass
class PrivateRedis:
    """A redis-server started by a test."""

    port: int
    tls_port: int
    socket: str
    password: str
    ca_file: str
    password_file: str
    directory: str
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        assert self.process is None
        d = self.directory
        args = [
            require_tool("redis-server"),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--tls-port",
            str(self.tls_port),
            "--tls-cert-file",
            f"{d}/cert.pem",
            "--tls-key-file",
            f"{d}/key.pem",
            "--tls-ca-cert-file",
            self.ca_file,
            "--tls-auth-clients",
            "no",
            "--unixsocket",
            self.socket,
            "--unixsocketperm",
            "700",
            "--requirepass",
            self.password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            d,
        ]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(unix_socket_path=self.socket, password=self.password)
        deadline = time.monotonic() + 20
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """Stop the server and reap it."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def client(self) -> redis.Redis:
        """Return a plain TCP client with the password."""
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """Start a redis-server (TCP + TLS + unix socket, password) in a short temp dir."""
    require_tool("redis-server")
    # Unix socket paths are limited to ~108 bytes: pytest's tmp_path can be longer.
    directory = tempfile.mkdtemp(prefix="mwr", dir="/tmp")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(f"{directory}/ca.pem")
    cert.private_key_pem.write_to_path(f"{directory}/key.pem")
    cert.cert_chain_pems[0].write_to_path(f"{directory}/cert.pem")
    password = uuid.uuid4().hex
    Path(f"{directory}/password").write_text(password + "\n")
    server = PrivateRedis(
        port=free_port(),
        tls_port=free_port(),
        socket=f"{directory}/redis.sock",
        password=password,
        ca_file=f"{directory}/ca.pem",
        password_file=f"{directory}/password",
        directory=directory,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
