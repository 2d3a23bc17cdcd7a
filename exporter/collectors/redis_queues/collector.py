"""Job queue lengths by state from Redis (Laravel, BullMQ, RQ, Sidekiq, Celery or explicit keys).

Queues are listed in config or discovered with SCAN (bounded COUNT, capped count); then every
length and the oldest pending payload of every queue are read in ONE pipelined round trip
(plus one more for layouts whose lists hold job ids, BullMQ: the oldest jobs' hashes).
A key holding the wrong type skips its queue with one warning instead of failing the refresh.

The oldest payload is read through a small Lua script (`EVAL`, in the same pipeline) that
returns at most `max_payload_bytes` of the element: a hostile or huge job (a 500 MB list
element) never crosses the wire whole, and the parsers find the enqueue time in the cut text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from prometheus_client.core import Metric
from pydantic import Field, ValidationInfo, field_validator
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError, ResponseError

from exporter.collectors.base import CollectError, Collector, Context
from exporter.collectors.redis_queues.layouts import (
    LAYOUTS,
    LENGTH_COMMANDS,
    STATES,
    KeyRef,
    KeyType,
    Lookup,
    QueuePlan,
    QueueReading,
    State,
    merge_readings,
    read_plan,
    select_queues,
)
from exporter.collectors.shared_metrics import QUEUE_JOBS, QUEUE_OLDEST_JOB_TIMESTAMP_SECONDS
from exporter.config import InstanceConfig
from maintwatch.configload import ExistingFile, SecretFromFile, StrictModel

FlavorName = Literal["laravel", "bullmq", "rq", "sidekiq", "celery", "keys"]
_SCHEMES = ("redis", "rediss", "unix")

# LINDEX on the server, cut to ARGV[2] bytes before the reply: the exporter never reads more.
# A missing element is nil (false in Lua); an error (WRONGTYPE) is returned as the error reply.
PEEK_SCRIPT = """\
local v = redis.pcall('LINDEX', KEYS[1], ARGV[1])
if type(v) ~= 'string' then return v end
return string.sub(v, 1, tonumber(ARGV[2]))
"""


class KeyConfig(StrictModel):
    """One explicit key of the `keys` flavor."""

    key: str = Field(min_length=1)
    queue: str | None = None
    state: State = "pending"


class RedisQueueConfig(InstanceConfig):
    """One Redis connection and the queues to watch on it."""

    url: str = "redis://127.0.0.1:6379/0"
    password_file: SecretFromFile | None = None
    ca_file: ExistingFile | None = None
    # `flavor` comes before the fields whose validators read it from `info.data`.
    flavor: FlavorName = "laravel"
    prefix: str | None = None
    queues: list[str] = Field(default_factory=list, validate_default=True)
    discover: bool | None = None
    keys: list[KeyConfig] = Field(default_factory=list, validate_default=True)
    max_queues: int = Field(default=200, ge=1, le=100_000)
    scan_count: int = Field(default=1000, ge=10, le=100_000)
    max_payload_bytes: int = Field(default=1_048_576, ge=1024, le=536_870_912)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in _SCHEMES:
            raise ValueError(f"scheme must be one of redis://, rediss://, unix:// (got {scheme!r})")
        return value

    @field_validator("password_file")
    @classmethod
    def _check_password(cls, value: Any, info: ValidationInfo) -> Any:
        # redis-py lets a password in the URL win over the keyword: refuse the ambiguity.
        if value is not None and urlsplit(str(info.data.get("url", ""))).password:
            raise ValueError("the url already holds a password: use one or the other")
        return value

    @field_validator("ca_file")
    @classmethod
    def _check_ca(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and not str(info.data.get("url", "")).startswith("rediss://"):
            raise ValueError("only used with a rediss:// url")
        return value

    @field_validator("queues")
    @classmethod
    def _check_queues(cls, value: list[str], info: ValidationInfo) -> list[str]:
        flavor = info.data.get("flavor")
        if flavor == "keys" and value:
            raise ValueError("not used with flavor keys (list `keys` instead)")
        if flavor == "celery" and not value:
            raise ValueError("celery queues cannot be discovered: list them")
        if any(not q for q in value):
            raise ValueError("queue names must not be empty")
        if len(set(value)) != len(value):
            raise ValueError("duplicate queue name")
        return value

    @field_validator("discover")
    @classmethod
    def _check_discover(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        flavor = info.data.get("flavor")
        if value and flavor in ("celery", "keys"):
            raise ValueError(f"flavor {flavor} cannot discover queues")
        return value

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, value: list[KeyConfig], info: ValidationInfo) -> list[KeyConfig]:
        flavor = info.data.get("flavor")
        if flavor == "keys" and not value:
            raise ValueError("flavor keys needs at least one key")
        if flavor not in (None, "keys") and value:
            raise ValueError("only used with flavor: keys")
        return value


class RedisQueuesCollector(Collector[RedisQueueConfig]):
    """Measure queue lengths on one Redis connection."""

    kind = "redis"
    label = "connection"
    config_type = RedisQueueConfig
    metrics = (
        QUEUE_JOBS,
        QUEUE_OLDEST_JOB_TIMESTAMP_SECONDS,
    )

    def __init__(self, config: RedisQueueConfig, context: Context) -> None:
        super().__init__(config, context)
        self._client: aioredis.Redis | None = None
        self._types: dict[str, KeyType] = {}  # `keys` flavor: TYPE answers, asked once
        self._skipped: dict[str, str] = {}  # queue → reason, so each problem is logged once
        self._unpeeked: dict[str, str] = {}  # queue → why its oldest payload was not read
        self._dropped = 0

    @property
    def prefix(self) -> str:
        """Return the configured key prefix or the flavor's default."""
        if self.config.prefix is not None:
            return self.config.prefix
        layout = LAYOUTS.get(self.config.flavor)
        return layout.default_prefix if layout else ""

    @property
    def discovering(self) -> bool:
        """Return True when queues are found with SCAN."""
        layout = LAYOUTS.get(self.config.flavor)
        if layout is None or not layout.discoverable:
            return False
        if self.config.discover is not None:
            return self.config.discover
        return not self.config.queues

    def _connect(self) -> aioredis.Redis:
        if self._client is None:
            timeout = self.config.timeout or 10.0
            options: dict[str, Any] = {
                # No per-reply read timeout: redis-py would arm one asyncio timer per reply
                # (a third of a 1 000-queue pipeline's time); the runtime's refresh timeout
                # cancels a stuck read instead, and redis-py drops the cancelled connection.
                "socket_timeout": None,
                "socket_connect_timeout": timeout,
                # One quick retry covers a pooled connection the server closed; backing off
                # longer would only turn "connection refused" into a refresh timeout.
                "retry": Retry(NoBackoff(), 1),
            }
            if self.config.password_file is not None:
                options["password"] = self.config.password_file.get_secret_value()
            if self.config.ca_file is not None:
                options["ssl_ca_certs"] = str(self.config.ca_file)
            # redis-py leaves from_url unannotated; it returns a Redis client.
            client: aioredis.Redis = aioredis.from_url(  # type: ignore[no-untyped-call]
                self.config.url, **options
            )
            self._client = client
        return self._client

    async def refresh(self) -> Sequence[Metric]:
        """Discover queues, read every length in one round trip and build the families."""
        client = self._connect()
        try:
            plans = await self._plans(client)
            readings = await self._read(client, plans)
        except RedisError as exc:
            raise CollectError(f"redis {type(exc).__name__}: {exc}") from exc
        return self._families(readings)

    async def _plans(self, client: aioredis.Redis) -> list[QueuePlan]:
        if self.config.flavor == "keys":
            return await self._key_plans(client)
        layout = LAYOUTS[self.config.flavor]
        discovered = await self._discover(client) if self.discovering else set()
        configured, kept, dropped = select_queues(
            self.config.queues, discovered, self.config.max_queues
        )
        if dropped != self._dropped:
            self._dropped = dropped
            if dropped:
                self.log.warning(
                    "queue_discovery_capped", max_queues=self.config.max_queues, dropped=dropped
                )
        plans = [layout.plan(self.prefix, q) for q in configured + kept]
        return plans + list(layout.shared(self.prefix))

    async def _discover(self, client: aioredis.Redis) -> set[str]:
        layout = LAYOUTS[self.config.flavor]
        found: set[str] = set()
        for pattern in layout.patterns(self.prefix):
            cursor = 0
            while True:
                cursor, keys = await client.scan(
                    cursor, match=pattern, count=self.config.scan_count
                )
                for raw in keys:
                    try:
                        key = raw.decode()
                    except UnicodeDecodeError:
                        continue  # a label must be UTF-8; such a queue can only be configured
                    name = layout.queue_from_key(self.prefix, key)
                    if name:
                        found.add(name)
                if cursor == 0:
                    break
        return found

    async def _key_plans(self, client: aioredis.Redis) -> list[QueuePlan]:
        entries = [(self.prefix + k.key, k.queue or k.key, k.state) for k in self.config.keys]
        unknown = [key for key, _, _ in entries if key not in self._types]
        if unknown:
            async with client.pipeline(transaction=False) as pipe:
                for key in unknown:
                    pipe.type(key)
                answers = await pipe.execute()
            for key, answer in zip(unknown, answers, strict=True):
                kind = answer.decode() if isinstance(answer, bytes) else str(answer)
                if kind in LENGTH_COMMANDS:
                    self._types[key] = kind  # type: ignore[assignment]
        by_queue: dict[str, list[KeyRef]] = {}
        for key, queue, state in entries:
            # A missing key (TYPE none) counts as an empty list; its type is asked again later.
            by_queue.setdefault(queue, []).append(KeyRef(key, state, self._types.get(key, "list")))
        return [QueuePlan(queue, tuple(refs)) for queue, refs in by_queue.items()]

    async def _read(self, client: aioredis.Redis, plans: list[QueuePlan]) -> list[QueueReading]:
        cap = self.config.max_payload_bytes
        async with client.pipeline(transaction=False) as pipe:
            for plan in plans:
                for ref in plan.keys:
                    pipe.execute_command(LENGTH_COMMANDS[ref.type], ref.key)
                if plan.peek is not None:
                    # EVAL, not EVALSHA: no NOSCRIPT retry round trip; the server caches it.
                    pipe.execute_command(
                        "EVAL", PEEK_SCRIPT, 1, plan.peek.key, plan.peek.index, cap
                    )
            results: list[Any] = await pipe.execute(raise_on_error=False)
        readings: list[QueueReading] = []
        lookups: list[tuple[int, Lookup, bytes]] = []
        failures: dict[str, str] = {}
        unpeeked: dict[str, str] = {}
        position = 0
        for plan in plans:
            count = len(plan.keys) + (1 if plan.peek is not None else 0)
            answers = results[position : position + count]
            position += count
            lengths = answers[: len(plan.keys)]
            errors = [a for a in lengths if isinstance(a, ResponseError)]
            if errors:
                failures[plan.queue] = str(errors[0])
                self._forget_types(plan)
                continue
            peeked = answers[-1] if plan.peek is not None else None
            if isinstance(peeked, ResponseError):
                # Counts stand; only the oldest time is lost (e.g. an ACL without EVAL).
                unpeeked[plan.queue] = str(peeked)
            peeked = peeked if isinstance(peeked, bytes) else None
            truncated = peeked is not None and len(peeked) >= cap
            reading = read_plan(plan, lengths, peeked, truncated)
            if plan.peek is not None and plan.peek.lookup is not None and peeked is not None:
                lookups.append((len(readings), plan.peek.lookup, peeked))
            readings.append(reading)
        self._note_failures(failures)
        self._note_unpeeked(unpeeked)
        if failures and not readings:
            queue, reason = next(iter(failures.items()))
            raise CollectError(f"no queue could be read; queue {queue!r}: {reason}")
        if lookups:
            await self._look_up(client, readings, lookups)
        return merge_readings(readings)

    async def _look_up(
        self,
        client: aioredis.Redis,
        readings: list[QueueReading],
        lookups: list[tuple[int, Lookup, bytes]],
    ) -> None:
        """Read the oldest waiting jobs' hashes in one round trip and set their queues' times."""
        async with client.pipeline(transaction=False) as pipe:
            for _, lookup, job_id in lookups:
                pipe.hmget(lookup.key(job_id), list(lookup.fields))
            results: list[Any] = await pipe.execute(raise_on_error=False)
        for (index, lookup, _), fields in zip(lookups, results, strict=True):
            # A job removed between the two reads, or a hash of another type: no time, no error.
            if isinstance(fields, list):
                oldest = lookup.parse(fields)
                readings[index] = replace(readings[index], oldest=oldest)

    def _forget_types(self, plan: QueuePlan) -> None:
        for ref in plan.keys:
            self._types.pop(ref.key, None)

    def _note_failures(self, failures: dict[str, str]) -> None:
        """Log a skipped queue once per new reason; forget queues that recovered."""
        for queue, reason in failures.items():
            if self._skipped.get(queue) != reason:
                self.log.warning("queue_skipped", queue=queue, reason=reason)
        self._skipped = failures

    def _note_unpeeked(self, unpeeked: dict[str, str]) -> None:
        """Log once per new reason a queue whose oldest payload could not be read."""
        for queue, reason in unpeeked.items():
            if self._unpeeked.get(queue) != reason:
                self.log.warning("oldest_job_unreadable", queue=queue, reason=reason)
        self._unpeeked = unpeeked

    def _families(self, readings: list[QueueReading]) -> list[Metric]:
        ms = self.metric_set()
        for reading in readings:
            for state in STATES:
                if state in reading.jobs:
                    ms.add(QUEUE_JOBS, reading.jobs[state], queue=reading.queue, state=state)
            if reading.oldest is not None:
                ms.add(QUEUE_OLDEST_JOB_TIMESTAMP_SECONDS, reading.oldest, queue=reading.queue)
        return ms.families()

    async def close(self) -> None:
        """Close the client and its connection pool."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
