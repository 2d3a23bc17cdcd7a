"""Benchmark: one refresh of 1 000 Laravel queues on the local Redis (target < 50 ms).

Compares, side by side in one run (interleaved, median of several rounds):
  configured  – 1 000 queues listed in config: one pipelined round trip
  discovered  – the same queues found with SCAN each refresh, then one pipelined round trip
  naive       – the same reads as one awaited command at a time (what the pipeline avoids)

Run: .venv/bin/python benchmarks/redis_queues.py [--queues 1000] [--rounds 9]
Keys live under a unique prefix and are deleted at the end; DB 0 is never flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import redis
import redis.asyncio as aioredis
import structlog

from exporter.collectors.base import Context
from exporter.collectors.redis_queues.collector import (
    PEEK_SCRIPT,
    RedisQueueConfig,
    RedisQueuesCollector,
)
from exporter.collectors.redis_queues.layouts import LAYOUTS, LENGTH_COMMANDS

URL = "redis://127.0.0.1:6379/0"


def seed(client: redis.Redis, prefix: str, queues: int) -> None:
    """Write 1-3 pending jobs, one delayed and one reserved job per queue (Laravel layout)."""
    pipe = client.pipeline(transaction=False)
    now = int(time.time())
    for n in range(queues):
        base = f"{prefix}queues:q{n:04d}"
        for j in range(1 + n % 3):
            pipe.rpush(base, json.dumps({"uuid": f"{n}-{j}", "createdAt": now - j}))
        pipe.zadd(f"{base}:delayed", {f"d{n}": now + 60})
        pipe.zadd(f"{base}:reserved", {f"r{n}": now + 90})
    pipe.execute()


def cleanup(client: redis.Redis, prefix: str) -> None:
    """Delete every key under the prefix."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


async def naive(client: aioredis.Redis, prefix: str, queues: list[str]) -> None:
    """Read the same keys one awaited command at a time."""
    layout = LAYOUTS["laravel"]
    for queue in queues:
        plan = layout.plan(prefix, queue)
        commands: list[tuple[str | int, ...]] = [
            (LENGTH_COMMANDS[ref.type], ref.key) for ref in plan.keys
        ]
        if plan.peek is not None:
            cap = 1_048_576  # max_payload_bytes' default, as the collector sends it
            commands.append(("EVAL", PEEK_SCRIPT, 1, plan.peek.key, plan.peek.index, cap))
        for command in commands:
            # redis-py leaves execute_command unannotated.
            await client.execute_command(*command)  # type: ignore[no-untyped-call]


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    """Return milliseconds taken by one call."""
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


async def main() -> None:
    """Seed, measure interleaved rounds, print medians and ratios, clean up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--queues", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    prefix = f"mwbench{uuid.uuid4().hex[:8]}_"
    names = [f"q{n:04d}" for n in range(args.queues)]
    sync = redis.Redis.from_url(URL)
    context = Context(logger=structlog.get_logger("bench"))
    base = {"name": "bench", "url": URL, "prefix": prefix, "max_queues": args.queues * 2}
    configured = RedisQueuesCollector(
        RedisQueueConfig.model_validate({**base, "queues": names}), context
    )
    discovered = RedisQueuesCollector(RedisQueueConfig.model_validate(base), context)
    raw: aioredis.Redis = aioredis.from_url(URL)  # type: ignore[no-untyped-call]
    try:
        seed(sync, prefix, args.queues)
        for collector in (configured, discovered):
            families = await collector.refresh()  # warm up connections
            series = sum(len(f.samples) for f in families)
            assert series >= args.queues * 3, series
        await naive(raw, prefix, names[:10])
        results: dict[str, list[float]] = {"configured": [], "discovered": [], "naive": []}
        for _ in range(args.rounds):
            results["configured"].append(await timed(configured.refresh))
            results["discovered"].append(await timed(discovered.refresh))
            results["naive"].append(await timed(lambda: naive(raw, prefix, names)))
        keyspace = sync.dbsize()
        medians = {k: statistics.median(v) for k, v in results.items()}
        print(f"{args.queues} queues, {args.rounds} rounds, keyspace {keyspace} keys (DB 0)")
        for name, value in medians.items():
            ratio = value / medians["configured"]
            spread = f"min {min(results[name]):.1f} max {max(results[name]):.1f}"
            print(f"  {name:<11} median {value:7.1f} ms  ({spread})  x{ratio:.1f} of configured")
    finally:
        await configured.close()
        await discovered.close()
        await raw.aclose()
        cleanup(sync, prefix)
        sync.close()


if __name__ == "__main__":
    asyncio.run(main())
