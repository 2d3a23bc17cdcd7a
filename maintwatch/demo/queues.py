"""Seed Laravel-layout job queues with a backlog in the local Redis, under a demo key prefix."""

from __future__ import annotations

import json
import uuid

import redis

QUEUES = {"default": 1500, "high": 12}  # pending jobs; 1500 is past the 1000 backlog threshold
OLDEST_AGE = 3600.0  # the backlog's first job was pushed an hour ago (threshold: 15 min)
DELAYED = 5
RESERVED = 2


class QueueSeedError(Exception):
    """Redis could not be reached or written; the message says which URL and why."""


def _payload(queue: str, pushed_at: float) -> bytes:
    job_id = str(uuid.uuid4())
    body = {
        "uuid": job_id,
        "displayName": "App\\Jobs\\SendInvoiceMail",
        "job": "Illuminate\\Queue\\CallQueuedHandler@call",
        "maxTries": 3,
        "timeout": 60,
        "data": {"commandName": "App\\Jobs\\SendInvoiceMail", "command": "O:8:..."},
        "id": job_id,
        "attempts": 0,
        "pushedAt": f"{pushed_at:.4f}",  # Horizon's format: float seconds as a string
        "queue": queue,
    }
    return json.dumps(body).encode()


def demo_keys(prefix: str) -> list[str]:
    """Return every key the demo writes (so a re-run can delete exactly those)."""
    keys = []
    for queue in QUEUES:
        base = f"{prefix}queues:{queue}"
        keys += [base, f"{base}:delayed", f"{base}:reserved", f"{base}:notify"]
    return keys


def seed(url: str, prefix: str, now: float) -> int:
    """Replace the demo queues with a fresh backlog; return the number of pending jobs."""
    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.delete(*demo_keys(prefix))
        for queue, count in QUEUES.items():
            base = f"{prefix}queues:{queue}"
            # Laravel RPUSHes and pops from the left: index 0 is the oldest job.
            step = OLDEST_AGE / count
            jobs = [_payload(queue, now - OLDEST_AGE + i * step) for i in range(count)]
            pipe.rpush(base, *jobs)
            pipe.zadd(f"{base}:delayed", {_payload(queue, now): now + 600 for _ in range(DELAYED)})
            pipe.zadd(f"{base}:reserved", {_payload(queue, now): now + 90 for _ in range(RESERVED)})
        pipe.execute()
    except redis.RedisError as exc:
        raise QueueSeedError(f"{url}: {exc}") from exc
    finally:
        client.close()
    return sum(QUEUES.values())


def remove(url: str, prefix: str) -> None:
    """Delete the demo queues (tests clean up with this)."""
    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.delete(*demo_keys(prefix))
    finally:
        client.close()
