"""The redis collector against the local Redis, one key prefix per test, per framework layout."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Callable

import pytest
import redis
import structlog

from exporter.collectors.redis_queues.collector import RedisQueuesCollector
from exporter.runtime import Runtime
from maintwatch.configload import ConfigError
from tests.exporter import _redis_helpers as h
from tests.exporter._rule_eval import expect_alert
from tests.exporter.conftest import Samples, promtool_check, refresh

rdb = h.rdb
make_collector = h.make_collector
Make = Callable[[str], RedisQueuesCollector]
URL = h.SHARED_URL


def jobs(samples: Samples, queue: str, state: str) -> float | None:
    """Return maintwatch_queue_jobs for one queue and state."""
    return samples.get("maintwatch_queue_jobs", queue=queue, state=state)


async def test_laravel_configured_queues(
    rdb: redis.Redis, unique: str, make_collector: Make, promtool: str
) -> None:
    prefix = f"{unique}_database_"
    created = int(time.time()) - 120
    h.laravel_push(rdb, prefix, "default", h.laravel_payload(created))
    h.laravel_push(rdb, prefix, "default", h.laravel_payload(created + 60))
    h.laravel_push(rdb, prefix, "default", h.laravel_payload(created + 61))
    h.laravel_reserve(rdb, prefix, "default", retry_after=90)
    h.laravel_later(rdb, prefix, "default", h.laravel_payload(created), time.time() + 300)
    collector = make_collector(
        f"  - {{name: app, url: '{URL}', prefix: {prefix}, queues: [default, high]}}\n"
    )
    samples = await refresh(collector)
    assert jobs(samples, "default", "pending") == 2
    assert jobs(samples, "default", "delayed") == 1
    assert jobs(samples, "default", "reserved") == 1
    # Laravel keeps failed jobs in a database table, not in Redis: no such series here.
    assert jobs(samples, "default", "failed") is None
    # The reserved job was the oldest; the oldest still pending was created 60 s later.
    oldest = samples.get("maintwatch_queue_oldest_job_timestamp_seconds", queue="default")
    assert oldest == created + 60
    # A configured queue that does not exist reports zero, and has no oldest job.
    assert jobs(samples, "high", "pending") == 0
    assert samples.get("maintwatch_queue_oldest_job_timestamp_seconds", queue="high") is None
    assert samples.get("maintwatch_queue_jobs", connection="app", queue="default") is not None
    promtool_check(promtool, samples.text())


async def test_laravel_horizon_pushed_at_and_cluster_hash_tags(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}_database_"
    payload = json.loads(h.laravel_payload(1_700_000_000))
    payload["pushedAt"] = "1700000123.4567"  # Horizon's JobPayload::prepare, a string
    h.laravel_push(rdb, prefix, "{emails}", json.dumps(payload))
    h.laravel_later(rdb, prefix, "{emails}", json.dumps(payload), time.time() + 60)
    collector = make_collector(f"  - {{name: app, url: '{URL}', prefix: {prefix}}}\n")
    samples = await refresh(collector)
    # Discovered from `queues:{emails}` and labelled without the Redis Cluster braces.
    assert jobs(samples, "emails", "pending") == 1
    assert jobs(samples, "emails", "delayed") == 1
    oldest = samples.get("maintwatch_queue_oldest_job_timestamp_seconds", queue="emails")
    assert oldest == pytest.approx(1700000123.4567)


async def test_laravel_payload_without_time_exports_no_oldest(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}_database_"
    old_style = json.loads(h.laravel_payload(0))
    del old_style["createdAt"]  # Laravel before 11 wrote no creation time
    h.laravel_push(rdb, prefix, "default", json.dumps(old_style))
    h.laravel_push(rdb, prefix, "legacy", "not json at all")
    collector = make_collector(f"  - {{name: app, url: '{URL}', prefix: {prefix}}}\n")
    samples = await refresh(collector)
    assert jobs(samples, "default", "pending") == 1
    assert jobs(samples, "legacy", "pending") == 1
    assert samples.all("maintwatch_queue_oldest_job_timestamp_seconds") == []


async def test_discovery_follows_queues_that_appear_and_go(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}_database_"
    h.laravel_push(rdb, prefix, "reports", h.laravel_payload(int(time.time())))
    collector = make_collector(
        f"  - {{name: app, url: '{URL}', prefix: {prefix}, queues: [default], discover: true}}\n"
    )
    samples = await refresh(collector)
    assert jobs(samples, "reports", "pending") == 1
    assert jobs(samples, "default", "pending") == 0
    rdb.delete(f"{prefix}queues:reports", f"{prefix}queues:reports:notify")
    samples = await refresh(collector)
    # Discovered and gone: its series disappear. Configured by name: it stays at zero.
    assert jobs(samples, "reports", "pending") is None
    assert jobs(samples, "default", "pending") == 0


async def test_discovery_is_capped(rdb: redis.Redis, unique: str, make_collector: Make) -> None:
    prefix = f"{unique}_database_"
    for n in range(12):
        h.laravel_push(rdb, prefix, f"q{n:02d}", h.laravel_payload(int(time.time())))
    collector = make_collector(
        f"  - {{name: app, url: '{URL}', prefix: {prefix}, max_queues: 5, scan_count: 10}}\n"
    )
    with structlog.testing.capture_logs() as logs:
        samples = await refresh(collector)
        await refresh(collector)
    queues = sorted(labels["queue"] for labels, _ in samples.all("maintwatch_queue_jobs"))
    # The first five by name, three states each; one warning, not one per refresh.
    assert queues == sorted(f"q{n:02d}" for n in range(5) for _ in range(3))
    capped = [e for e in logs if e["event"] == "queue_discovery_capped"]
    assert len(capped) == 1
    assert capped[0]["dropped"] == 7


async def test_bullmq(rdb: redis.Redis, unique: str, make_collector: Make, promtool: str) -> None:
    prefix = f"{unique}:bull:"
    for _ in range(4):
        h.bullmq_add(rdb, prefix, "render")
    h.bullmq_add(rdb, prefix, "render", priority=5)
    h.bullmq_add(rdb, prefix, "render", delay_ms=60_000)
    active = h.bullmq_take(rdb, prefix, "render")
    second = h.bullmq_take(rdb, prefix, "render")
    h.bullmq_fail(rdb, prefix, "render", second)
    h.bullmq_add(rdb, prefix, "mail")
    collector = make_collector(
        f"  - {{name: node, url: '{URL}', flavor: bullmq, prefix: '{prefix}'}}\n"
    )
    samples = await refresh(collector)
    assert active
    assert jobs(samples, "render", "pending") == 3  # 2 waiting + 1 prioritized
    assert jobs(samples, "render", "reserved") == 1
    assert jobs(samples, "render", "delayed") == 1
    assert jobs(samples, "render", "failed") == 1
    assert jobs(samples, "mail", "pending") == 1
    promtool_check(promtool, samples.text())
    # The failed set reaches the rules: a failed job kept in BullMQ (seed 003) is listed.
    kept = [{"connection": "node", "queue": "render"}]
    expect_alert(promtool, samples, "FailedJobsStanding", kept)


async def test_bullmq_oldest_waiting_job(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}:bull:"
    ids = [h.bullmq_add(rdb, prefix, "render") for _ in range(3)]
    created = [int(rdb.hget(f"{prefix}render:{i}", "timestamp") or 0) / 1000 for i in ids]
    # A worker took the oldest; the next one waits longest.
    h.bullmq_take(rdb, prefix, "render")
    # A delayed job promoted to `wait` (promoteDelayedJobs: ZREM delayed, LPUSH wait) waits
    # from its creation plus its delay; a queue whose only jobs are delayed has no oldest.
    late = h.bullmq_add(rdb, prefix, "mail", delay_ms=5_000)
    rdb.zrem(f"{prefix}mail:delayed", late)
    rdb.lpush(f"{prefix}mail:wait", late)
    h.bullmq_add(rdb, prefix, "digest", delay_ms=60_000)
    collector = make_collector(
        f"  - {{name: node, url: '{URL}', flavor: bullmq, prefix: '{prefix}'}}\n"
    )
    samples = await refresh(collector)
    oldest = "maintwatch_queue_oldest_job_timestamp_seconds"
    assert samples.get(oldest, queue="render") == created[1]
    mail_created = int(rdb.hget(f"{prefix}mail:{late}", "timestamp") or 0) / 1000
    assert samples.get(oldest, queue="mail") == mail_created + 5
    assert samples.get(oldest, queue="digest") is None
    # The job is taken between the two reads of a refresh: its hash is gone, no time, no error.
    rdb.delete(f"{prefix}mail:{late}")
    samples = await refresh(collector)
    assert samples.get(oldest, queue="mail") is None
    assert jobs(samples, "mail", "pending") == 1


async def test_rq(rdb: redis.Redis, unique: str, make_collector: Make) -> None:
    prefix = f"{unique}:"
    for _ in range(3):
        h.rq_enqueue(rdb, prefix, "default")
    running = h.rq_enqueue(rdb, prefix, "default")
    rdb.lrem(f"{prefix}rq:queue:default", 1, running)
    h.rq_registry_add(rdb, prefix, "wip", "default", f"{running}:exec1")
    h.rq_registry_add(rdb, prefix, "scheduled", "default", "later-job")
    # A queue whose only job failed has no list any more: found through its failed registry.
    h.rq_registry_add(rdb, prefix, "failed", "low", "broken-job")
    collector = make_collector(f"  - {{name: py, url: '{URL}', flavor: rq, prefix: '{prefix}'}}\n")
    samples = await refresh(collector)
    assert jobs(samples, "default", "pending") == 3
    assert jobs(samples, "default", "reserved") == 1
    assert jobs(samples, "default", "delayed") == 1
    assert jobs(samples, "default", "failed") == 0
    assert jobs(samples, "low", "failed") == 1
    assert jobs(samples, "low", "pending") == 0


@pytest.mark.parametrize("millis", [False, True], ids=["sidekiq7", "sidekiq8"])
async def test_sidekiq(rdb: redis.Redis, unique: str, make_collector: Make, millis: bool) -> None:
    prefix = f"{unique}:"
    first = 1_700_000_000.25
    for n in range(3):
        stamp = first + n
        h.sidekiq_push(
            rdb, prefix, "default", h.sidekiq_job("default", stamp * 1000 if millis else stamp)
        )
    h.sidekiq_push(rdb, prefix, "critical", h.sidekiq_job("critical", None))
    h.sidekiq_zadd(rdb, prefix, "schedule", h.sidekiq_job("default", None), time.time() + 600)
    h.sidekiq_zadd(rdb, prefix, "retry", h.sidekiq_job("default", first), time.time() + 30)
    h.sidekiq_zadd(rdb, prefix, "dead", h.sidekiq_job("critical", first), time.time())
    h.sidekiq_zadd(rdb, prefix, "dead", h.sidekiq_job("critical", first + 1), time.time())
    collector = make_collector(
        f"  - {{name: rb, url: '{URL}', flavor: sidekiq, prefix: '{prefix}'}}\n"
    )
    samples = await refresh(collector)
    assert jobs(samples, "default", "pending") == 3
    assert jobs(samples, "critical", "pending") == 1
    assert jobs(samples, "schedule", "delayed") == 1
    assert jobs(samples, "retry", "failed") == 1
    assert jobs(samples, "dead", "failed") == 2
    oldest = samples.get("maintwatch_queue_oldest_job_timestamp_seconds", queue="default")
    assert oldest == pytest.approx(first)
    assert samples.get("maintwatch_queue_oldest_job_timestamp_seconds", queue="critical") is None


async def test_celery_priority_subqueues_and_unacked(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}:"
    for _ in range(3):
        h.celery_put(rdb, prefix, "celery")
    h.celery_put(rdb, prefix, "celery", priority=3)
    h.celery_put(rdb, prefix, "celery", priority=9)
    h.celery_deliver(rdb, prefix, "celery")
    collector = make_collector(
        f"  - {{name: py, url: '{URL}', flavor: celery, prefix: '{prefix}',\n"
        "      queues: [celery, bulk]}\n"
    )
    samples = await refresh(collector)
    assert jobs(samples, "celery", "pending") == 4  # 2 + one at priority 3 + one at 9
    assert jobs(samples, "bulk", "pending") == 0
    assert jobs(samples, "unacked", "reserved") == 1


async def test_explicit_keys_of_each_type(
    rdb: redis.Redis, unique: str, make_collector: Make, promtool: str
) -> None:
    rdb.rpush(f"{unique}:inbox", "a", "b")
    rdb.zadd(f"{unique}:later", {"x": 1, "y": 2, "z": 3})
    for n in range(4):
        rdb.xadd(f"{unique}:events", {"n": n})
    collector = make_collector(
        f"  - name: custom\n    url: '{URL}'\n    flavor: keys\n    prefix: '{unique}:'\n"
        "    keys:\n"
        "      - {key: inbox, queue: mail}\n"
        "      - {key: later, queue: mail, state: delayed}\n"
        "      - {key: events}\n"
        "      - {key: missing, queue: other}\n"
    )
    samples = await refresh(collector)
    assert jobs(samples, "mail", "pending") == 2
    assert jobs(samples, "mail", "delayed") == 3
    assert jobs(samples, "events", "pending") == 4
    assert jobs(samples, "other", "pending") == 0
    # The key type is remembered; a key that changes type is asked again, not a crash.
    rdb.delete(f"{unique}:inbox")
    rdb.sadd(f"{unique}:inbox", "s1", "s2", "s3")
    samples = await refresh(collector)
    assert jobs(samples, "mail", "pending") is None
    samples = await refresh(collector)
    assert jobs(samples, "mail", "pending") == 3
    promtool_check(promtool, samples.text())


async def test_a_huge_oldest_payload_is_read_only_up_to_the_cap(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}_database_"
    created = int(time.time()) - 600
    huge = 64 * 1024 * 1024
    # The oldest job of `huge` is 64 MiB; its time comes before the cut, `late`'s after it.
    head = f'{{"uuid":"u","createdAt":{created},"data":{{"command":"'
    rdb.rpush(f"{prefix}queues:huge", head + "x" * huge + '"}}')
    rdb.rpush(f"{prefix}queues:huge", h.laravel_payload(created + 60))
    rdb.rpush(f"{prefix}queues:late", '{"data":"' + "y" * (2 * 1024 * 1024) + '","createdAt":5}')
    h.laravel_push(rdb, prefix, "plain", h.laravel_payload(created + 120))
    collector = make_collector(
        f"  - {{name: app, url: '{URL}', prefix: {prefix}, queues: [huge, late, plain]}}\n"
    )
    await refresh(collector)  # connect first: the measured refresh holds no connection setup
    tracemalloc.start()
    try:
        samples = await refresh(collector)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 1 MiB read (max_payload_bytes) instead of 64 MiB; room for the reply buffers and parsing.
    assert peak < 8 * 1024 * 1024, peak
    oldest = "maintwatch_queue_oldest_job_timestamp_seconds"
    assert jobs(samples, "huge", "pending") == 2
    assert samples.get(oldest, queue="huge") == created
    assert jobs(samples, "late", "pending") == 1
    assert samples.get(oldest, queue="late") is None
    assert jobs(samples, "plain", "pending") == 1
    assert samples.get(oldest, queue="plain") == created + 120


async def test_a_smaller_cap_still_finds_a_leading_time(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}_"
    created = int(time.time()) - 30
    job = h.sidekiq_job("default", created)
    job["args"] = ["z" * 10_000]
    h.sidekiq_push(rdb, prefix, "default", {"enqueued_at": job.pop("enqueued_at"), **job})
    collector = make_collector(
        f"  - {{name: s, url: '{URL}', flavor: sidekiq, prefix: '{prefix}', queues: [default],"
        " max_payload_bytes: 1024}\n"
    )
    samples = await refresh(collector)
    assert samples.get("maintwatch_queue_oldest_job_timestamp_seconds", queue="default") == created


async def test_wrong_type_skips_that_queue_and_logs_once(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}_database_"
    h.laravel_push(rdb, prefix, "default", h.laravel_payload(int(time.time())))
    rdb.set(f"{prefix}queues:broken", "a string where a list belongs")
    collector = make_collector(f"  - {{name: app, url: '{URL}', prefix: {prefix}}}\n")
    with structlog.testing.capture_logs() as logs:
        samples = await refresh(collector)
        await refresh(collector)
    assert jobs(samples, "default", "pending") == 1
    assert jobs(samples, "broken", "pending") is None
    skipped = [e for e in logs if e["event"] == "queue_skipped"]
    assert len(skipped) == 1
    assert skipped[0]["queue"] == "broken"
    assert "WRONGTYPE" in skipped[0]["reason"]


async def test_only_wrong_types_fail_the_refresh(
    rdb: redis.Redis, unique: str, make_collector: Make
) -> None:
    prefix = f"{unique}_database_"
    rdb.set(f"{prefix}queues:default", "oops")
    collector = make_collector(
        f"  - {{name: app, url: '{URL}', prefix: {prefix}, queues: [default]}}\n"
    )
    rt = Runtime(structlog.get_logger("test"))
    try:
        await rt.apply([(collector, 3600.0, 5.0)])
        await rt.wait_ready()
        (state,) = rt.states()
        assert not state.up
        assert "no queue could be read" in state.last_error
        assert "WRONGTYPE" in state.last_error
        names = {f.name for f in rt.families()}
        assert "maintwatch_queue_jobs" not in names
    finally:
        await rt.close()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("  - {name: a, url: 'http://x'}\n", "redis[0].url: scheme must be one of"),
        ("  - {name: a, flavor: celery}\n", "redis[0].queues: celery queues cannot be discovered"),
        ("  - {name: a, flavor: keys}\n", "redis[0].keys: flavor keys needs at least one key"),
        ("  - {name: a, keys: [{key: k}]}\n", "redis[0].keys: only used with flavor: keys"),
        ("  - {name: a, queues: [a, a]}\n", "redis[0].queues: duplicate queue name"),
        ("  - {name: a, flavor: sidekiq2}\n", "redis[0].flavor: expected one of:"),
        ("  - {name: a, max_queues: 0}\n", "redis[0].max_queues: must be at least"),
        ("  - {name: a, max_payload_bytes: 10}\n", "redis[0].max_payload_bytes: must be at least"),
        ("  - {name: a, ca_file: /etc/hostname}\n", "redis[0].ca_file: only used with a rediss"),
        ("  - {name: a, password_file: /nonexistent/pw}\n", "redis[0].password_file: cannot read"),
        (
            "  - {name: a, url: 'redis://:pw@h:1/0', password_file: /etc/hostname}\n",
            "redis[0].password_file: the url already holds a password",
        ),
        ("  - {name: a, flavor: keys, keys: [{key: k, state: done}]}\n", "redis[0].keys[0].state"),
    ],
)
def test_config_errors_are_located(section: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        h.redis_config(section)
    assert any(p.startswith(f"x.yml: {message}") for p in caught.value.problems), (
        caught.value.problems
    )
