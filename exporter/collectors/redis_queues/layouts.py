"""Redis key layouts ("flavors") of job queue frameworks: pure functions, no I/O.

A layout maps a queue name to the Redis keys that hold its jobs by state, finds queue names in
keys seen by SCAN, and reads the enqueue time of the oldest pending job from its payload. Key
names follow what each framework writes:

- laravel (Illuminate\\Queue\\RedisQueue): list `queues:<q>` (RPUSH, LPOP: oldest at index 0),
  zsets `queues:<q>:delayed` and `queues:<q>:reserved`; payload `pushedAt` (Horizon, float
  seconds as a string) or `createdAt` (Laravel 11+, integer seconds). Cluster users name
  queues `{default}` so the keys share a hash slot; the label drops the braces.
- bullmq: `bull:<q>:wait`, `:paused` (lists), `:prioritized` (zset) → pending; `:active`
  (list) → reserved; `:delayed` → delayed; `:failed` → failed. Queues found by `:meta`. The
  wait list holds job ids (LPUSH, workers take from the tail: oldest at index -1); the job hash
  `bull:<q>:<id>` holds `timestamp` (creation, ms) and `delay` (ms): a job waits from
  `timestamp + delay`, which is when a delayed job was promoted to `wait`.
- rq: list `rq:queue:<q>`, registries `rq:wip:<q>` (started → reserved),
  `rq:scheduled:<q>` (delayed), `rq:failed:<q>` (failed).
- sidekiq: list `queue:<q>` (LPUSH, BRPOP: oldest at index -1), payload `enqueued_at`
  (float seconds; integer milliseconds since Sidekiq 8). The `schedule`, `retry` and `dead`
  zsets are shared by all queues and reported as queues of those names.
- celery (kombu's Redis transport): list named as the queue plus priority sub-queues
  `<q>\\x06\\x16<n>` for n in 3, 6, 9 (LPUSH, BRPOP); the `unacked` hash (messages handed to
  workers, all queues) is reported as a queue named `unacked`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

State = Literal["pending", "delayed", "reserved", "failed"]
STATES: tuple[State, ...] = ("pending", "delayed", "reserved", "failed")
KeyType = Literal["list", "zset", "stream", "set", "hash"]
Flavor = Literal["laravel", "bullmq", "rq", "sidekiq", "celery"]

LENGTH_COMMANDS: dict[str, str] = {
    "list": "LLEN",
    "zset": "ZCARD",
    "stream": "XLEN",
    "set": "SCARD",
    "hash": "HLEN",
}

# kombu's Redis transport: `sep` and `priority_steps` defaults (priority 0 is the bare name).
CELERY_PRIORITY_SEP = "\x06\x16"
CELERY_PRIORITY_STEPS = (3, 6, 9)

# Above this an epoch value cannot be seconds (year 5138): it is milliseconds.
_MILLIS_THRESHOLD = 1e11

# A number as JSON writes it, and a field's value in a payload cut short: a JSON number ended
# by `,` or `}`, or a string holding one (Horizon's `pushedAt`); a number running into the cut
# has no terminator and is not taken. At most 40 characters of number: no backtracking blow-up.
_NUMBER = rb"-?\d{1,20}(?:\.\d{1,20})?(?:[eE][+-]?\d{1,3})?"
_CUT_FIELD = {
    name: re.compile(
        rb'"' + name.encode() + rb'"[ \t\r\n]{0,16}:[ \t\r\n]{0,16}'
        rb'(?:"(' + _NUMBER + rb')"|(' + _NUMBER + rb")(?=[ \t\r\n]{0,16}[,}]))"
    )
    for name in ("pushedAt", "createdAt", "enqueued_at")
}


@dataclass(frozen=True)
class KeyRef:
    """One Redis key whose length counts jobs of one state."""

    key: str
    state: State
    type: KeyType


@dataclass(frozen=True)
class Lookup:
    """Read fields of the hash a peeked job id names, and parse the enqueue time from them."""

    key: Callable[[bytes], str]
    fields: tuple[str, ...]
    parse: Callable[[Sequence[bytes | None]], float | None]


@dataclass(frozen=True)
class Peek:
    """Read one list element (the oldest pending job) and parse its enqueue time.

    `parse(payload, truncated)`: `truncated` says the element was cut at the read cap
    (`max_payload_bytes`), so the payload is not whole JSON. With `lookup`, the element is a
    job id, and the time is in the hash it names (one more round trip); `parse` is then unused.
    """

    key: str
    index: int
    parse: Callable[[bytes, bool], float | None]
    lookup: Lookup | None = None


@dataclass(frozen=True)
class QueuePlan:
    """What to read for one queue label."""

    queue: str
    keys: tuple[KeyRef, ...]
    peek: Peek | None = None


@dataclass(frozen=True)
class QueueReading:
    """Job counts by state for one queue, and the oldest pending job's enqueue time."""

    queue: str
    jobs: dict[State, int]
    oldest: float | None


def _epoch(value: object) -> float | None:
    """Return epoch seconds from a number or numeric string (seconds or milliseconds)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if seconds <= 0:
        return None
    return seconds / 1000.0 if seconds > _MILLIS_THRESHOLD else seconds


def _cut_field(payload: bytes, fields: Sequence[str]) -> float | None:
    """Return the first field of `fields` found in a cut JSON payload (first occurrence)."""
    for name in fields:
        match = _CUT_FIELD[name].search(payload)
        if match is not None:
            found = _epoch((match.group(1) or match.group(2)).decode())
            if found is not None:
                return found
    return None


def _json_field(payload: bytes, fields: Sequence[str], truncated: bool) -> float | None:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        # A payload cut at the read cap is not whole JSON: look for the field's text instead.
        return _cut_field(payload, fields) if truncated else None
    if not isinstance(data, dict):
        return None
    for name in fields:
        found = _epoch(data.get(name))
        if found is not None:
            return found
    return None


def laravel_enqueued_at(payload: bytes, truncated: bool = False) -> float | None:
    """Return a Laravel job's push time: Horizon's `pushedAt`, else `createdAt`."""
    return _json_field(payload, ("pushedAt", "createdAt"), truncated)


def sidekiq_enqueued_at(payload: bytes, truncated: bool = False) -> float | None:
    """Return a Sidekiq job's `enqueued_at` (seconds, or milliseconds since Sidekiq 8)."""
    return _json_field(payload, ("enqueued_at",), truncated)


def bullmq_waiting_since(fields: Sequence[bytes | None]) -> float | None:
    """Return when a BullMQ job started waiting from its hash's `timestamp` and `delay` (ms)."""
    created = _epoch(fields[0].decode(errors="replace")) if fields and fields[0] else None
    if created is None:
        return None
    delay = fields[1] if len(fields) > 1 else None
    try:
        delay_ms = float(delay) if delay else 0.0
    except ValueError:
        delay_ms = 0.0
    return created + max(delay_ms, 0.0) / 1000.0


def _no_payload(_: bytes, __: bool) -> float | None:
    return None


def strip_hash_tag(queue: str) -> str:
    """Return a Redis Cluster queue name `{q}` as `q` for the label."""
    if len(queue) > 2 and queue.startswith("{") and queue.endswith("}"):
        return queue[1:-1]
    return queue


class Layout:
    """Base layout: subclasses define keys, discovery patterns and shared sets."""

    flavor: str
    default_prefix: str = ""
    discoverable: bool = True

    def plan(self, prefix: str, queue: str) -> QueuePlan:
        """Return the keys to read for a queue."""
        raise NotImplementedError

    def patterns(self, prefix: str) -> tuple[str, ...]:
        """Return SCAN MATCH patterns that find this layout's queues."""
        return ()

    def queue_from_key(self, prefix: str, key: str) -> str | None:
        """Return the queue name a scanned key belongs to, or None."""
        return None

    def shared(self, prefix: str) -> tuple[QueuePlan, ...]:
        """Return plans for keys shared by all queues (Sidekiq's retry set…)."""
        return ()


def _between(key: str, head: str, tail: str = "") -> str | None:
    if not key.startswith(head) or not key.endswith(tail) or len(key) <= len(head) + len(tail):
        return None
    return key[len(head) : len(key) - len(tail)]


def _glob_escape(text: str) -> str:
    """Escape SCAN MATCH glob characters in a literal prefix."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class Laravel(Layout):
    """Laravel's RedisQueue (and Horizon, which uses the same keys)."""

    flavor = "laravel"
    default_prefix = "laravel_database_"  # Str::slug(APP_NAME='laravel', '_') . '_database_'
    _suffixes = (":delayed", ":reserved", ":notify")

    def plan(self, prefix: str, queue: str) -> QueuePlan:
        """Return the pending list and the delayed/reserved zsets of a queue."""
        base = f"{prefix}queues:{queue}"
        return QueuePlan(
            strip_hash_tag(queue),
            (
                KeyRef(base, "pending", "list"),
                KeyRef(f"{base}:delayed", "delayed", "zset"),
                KeyRef(f"{base}:reserved", "reserved", "zset"),
            ),
            Peek(base, 0, laravel_enqueued_at),
        )

    def patterns(self, prefix: str) -> tuple[str, ...]:
        """Match every key under `queues:`."""
        return (_glob_escape(prefix) + "queues:*",)

    def queue_from_key(self, prefix: str, key: str) -> str | None:
        """Return `q` for `queues:q`, `queues:q:delayed`, `queues:q:reserved`, `queues:q:notify`."""
        rest = _between(key, prefix + "queues:")
        if rest is None:
            return None
        for suffix in self._suffixes:
            if rest.endswith(suffix) and len(rest) > len(suffix):
                return rest[: -len(suffix)]
        return rest


class BullMQ(Layout):
    """BullMQ (Node.js); the prefix includes BullMQ's own `bull:`."""

    flavor = "bullmq"
    default_prefix = "bull:"
    _keys: tuple[tuple[str, State, KeyType], ...] = (
        ("wait", "pending", "list"),
        ("paused", "pending", "list"),
        ("prioritized", "pending", "zset"),
        ("active", "reserved", "list"),
        ("delayed", "delayed", "zset"),
        ("failed", "failed", "zset"),
    )

    def plan(self, prefix: str, queue: str) -> QueuePlan:
        """Return the state lists/zsets of a queue, and where its oldest waiting job is."""
        keys = tuple(KeyRef(f"{prefix}{queue}:{name}", s, t) for name, s, t in self._keys)
        base = f"{prefix}{queue}:"
        lookup = Lookup(
            lambda job_id: base + job_id.decode(errors="replace"),
            ("timestamp", "delay"),
            bullmq_waiting_since,
        )
        return QueuePlan(queue, keys, Peek(f"{base}wait", -1, _no_payload, lookup))

    def patterns(self, prefix: str) -> tuple[str, ...]:
        """Match the `meta` hash every BullMQ queue has once a job was added."""
        return (_glob_escape(prefix) + "*:meta",)

    def queue_from_key(self, prefix: str, key: str) -> str | None:
        """Return `q` for `bull:q:meta` (BullMQ forbids `:` in queue names)."""
        name = _between(key, prefix, ":meta")
        return name if name and ":" not in name else None


class RQ(Layout):
    """RQ (Python): the queue list and its job registries."""

    flavor = "rq"

    def plan(self, prefix: str, queue: str) -> QueuePlan:
        """Return the queue list and the started/scheduled/failed registries."""
        return QueuePlan(
            queue,
            (
                KeyRef(f"{prefix}rq:queue:{queue}", "pending", "list"),
                KeyRef(f"{prefix}rq:scheduled:{queue}", "delayed", "zset"),
                KeyRef(f"{prefix}rq:wip:{queue}", "reserved", "zset"),
                KeyRef(f"{prefix}rq:failed:{queue}", "failed", "zset"),
            ),
        )

    def patterns(self, prefix: str) -> tuple[str, ...]:
        """Match queue lists and failed registries (a queue whose jobs all failed has no list)."""
        escaped = _glob_escape(prefix)
        return (escaped + "rq:queue:*", escaped + "rq:failed:*")

    def queue_from_key(self, prefix: str, key: str) -> str | None:
        """Return `q` for `rq:queue:q` or `rq:failed:q`."""
        return _between(key, prefix + "rq:queue:") or _between(key, prefix + "rq:failed:")


class Sidekiq(Layout):
    """Sidekiq (Ruby); the prefix is a redis-namespace such as `myapp:`."""

    flavor = "sidekiq"

    def plan(self, prefix: str, queue: str) -> QueuePlan:
        """Return the queue list; its oldest job is at the tail."""
        key = f"{prefix}queue:{queue}"
        return QueuePlan(
            queue, (KeyRef(key, "pending", "list"),), Peek(key, -1, sidekiq_enqueued_at)
        )

    def patterns(self, prefix: str) -> tuple[str, ...]:
        """Match queue lists."""
        return (_glob_escape(prefix) + "queue:*",)

    def queue_from_key(self, prefix: str, key: str) -> str | None:
        """Return `q` for `queue:q`."""
        return _between(key, prefix + "queue:")

    def shared(self, prefix: str) -> tuple[QueuePlan, ...]:
        """Return the global schedule (delayed), retry and dead (failed) sets."""
        return (
            QueuePlan("schedule", (KeyRef(f"{prefix}schedule", "delayed", "zset"),)),
            QueuePlan("retry", (KeyRef(f"{prefix}retry", "failed", "zset"),)),
            QueuePlan("dead", (KeyRef(f"{prefix}dead", "failed", "zset"),)),
        )


class Celery(Layout):
    """Celery on kombu's Redis transport; the prefix is kombu's `global_keyprefix`."""

    flavor = "celery"
    discoverable = False  # queue lists have arbitrary names: nothing to match on

    def plan(self, prefix: str, queue: str) -> QueuePlan:
        """Return the queue list and its priority sub-queues."""
        names = [queue] + [f"{queue}{CELERY_PRIORITY_SEP}{p}" for p in CELERY_PRIORITY_STEPS]
        return QueuePlan(queue, tuple(KeyRef(prefix + n, "pending", "list") for n in names))

    def shared(self, prefix: str) -> tuple[QueuePlan, ...]:
        """Return the `unacked` hash: messages delivered to workers and not yet acknowledged."""
        return (QueuePlan("unacked", (KeyRef(f"{prefix}unacked", "reserved", "hash"),)),)


LAYOUTS: dict[str, Layout] = {
    layout.flavor: layout for layout in (Laravel(), BullMQ(), RQ(), Sidekiq(), Celery())
}


def read_plan(
    plan: QueuePlan, lengths: Sequence[int], peeked: bytes | None, truncated: bool = False
) -> QueueReading:
    """Sum key lengths by state; parse the peeked payload when jobs are pending.

    `truncated`: the payload was cut at the read cap (see `Peek`).
    """
    jobs: dict[State, int] = {}
    for ref, length in zip(plan.keys, lengths, strict=True):
        jobs[ref.state] = jobs.get(ref.state, 0) + int(length)
    oldest = None
    if plan.peek is not None and peeked is not None and jobs.get("pending", 0) > 0:
        oldest = plan.peek.parse(peeked, truncated)
    return QueueReading(plan.queue, jobs, oldest)


def merge_readings(readings: Sequence[QueueReading]) -> list[QueueReading]:
    """Merge readings that share a label (`q` and `{q}`): sum counts, keep the oldest time."""
    merged: dict[str, QueueReading] = {}
    for reading in readings:
        seen = merged.get(reading.queue)
        if seen is None:
            merged[reading.queue] = reading
            continue
        jobs = dict(seen.jobs)
        for state, count in reading.jobs.items():
            jobs[state] = jobs.get(state, 0) + count
        times = [t for t in (seen.oldest, reading.oldest) if t is not None]
        merged[reading.queue] = QueueReading(reading.queue, jobs, min(times) if times else None)
    return list(merged.values())


def select_queues(
    configured: Sequence[str], discovered: set[str], max_queues: int
) -> tuple[list[str], list[str], int]:
    """Return (configured, discovered kept, discovered dropped) under the max-queues cap.

    Configured queues always stay; discovered ones fill the rest in name order so the set of
    series is stable from one refresh to the next.
    """
    extra = sorted(discovered - set(configured))
    room = max(0, max_queues - len(configured))
    return list(configured), extra[:room], max(0, len(extra) - room)
