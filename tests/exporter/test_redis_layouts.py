"""Pure layout logic: key names, discovery parsing, payload times, caps and merges."""

from __future__ import annotations

import json

import pytest

from exporter.collectors.redis_queues.layouts import (
    LAYOUTS,
    QueueReading,
    laravel_enqueued_at,
    merge_readings,
    read_plan,
    select_queues,
    sidekiq_enqueued_at,
)


def test_laravel_keys_and_cluster_label() -> None:
    plan = LAYOUTS["laravel"].plan("app_database_", "{default}")
    assert plan.queue == "default"
    assert [(k.key, k.state, k.type) for k in plan.keys] == [
        ("app_database_queues:{default}", "pending", "list"),
        ("app_database_queues:{default}:delayed", "delayed", "zset"),
        ("app_database_queues:{default}:reserved", "reserved", "zset"),
    ]
    assert plan.peek is not None
    assert (plan.peek.key, plan.peek.index) == ("app_database_queues:{default}", 0)


@pytest.mark.parametrize(
    ("flavor", "prefix", "key", "queue"),
    [
        ("laravel", "p_", "p_queues:high", "high"),
        ("laravel", "p_", "p_queues:high:delayed", "high"),
        ("laravel", "p_", "p_queues:high:notify", "high"),
        ("laravel", "p_", "p_queues:a:b", "a:b"),
        ("laravel", "p_", "other_queues:high", None),
        ("bullmq", "bull:", "bull:render:meta", "render"),
        ("bullmq", "bull:", "bull:render:12:meta", None),
        ("rq", "", "rq:queue:default", "default"),
        ("rq", "", "rq:failed:low", "low"),
        ("rq", "", "rq:job:abc", None),
        ("sidekiq", "ns:", "ns:queue:critical", "critical"),
        ("sidekiq", "ns:", "ns:queues", None),
    ],
)
def test_queue_from_key(flavor: str, prefix: str, key: str, queue: str | None) -> None:
    assert LAYOUTS[flavor].queue_from_key(prefix, key) == queue


def test_scan_patterns_escape_glob_characters_in_the_prefix() -> None:
    assert LAYOUTS["laravel"].patterns("a*b_") == ("a\\*b_queues:*",)
    assert LAYOUTS["celery"].patterns("") == ()
    assert not LAYOUTS["celery"].discoverable


def test_celery_priority_subqueues() -> None:
    plan = LAYOUTS["celery"].plan("", "celery")
    assert [k.key for k in plan.keys] == [
        "celery",
        "celery\x06\x163",
        "celery\x06\x166",
        "celery\x06\x169",
    ]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"createdAt": 1700000000}, 1700000000.0),
        ({"pushedAt": "1700000001.5", "createdAt": 1700000000}, 1700000001.5),
        ({"createdAt": None}, None),
        ({"createdAt": True}, None),
        ({"createdAt": "soon"}, None),
        ({}, None),
    ],
)
def test_laravel_enqueued_at(payload: dict[str, object], expected: float | None) -> None:
    assert laravel_enqueued_at(json.dumps(payload).encode()) == expected


def test_enqueued_at_handles_garbage_and_milliseconds() -> None:
    assert laravel_enqueued_at(b"\xff\xfe") is None
    assert laravel_enqueued_at(b"[1, 2]") is None
    assert sidekiq_enqueued_at(b'{"enqueued_at": 1700000000.25}') == 1700000000.25
    assert sidekiq_enqueued_at(b'{"enqueued_at": 1700000000250}') == 1700000000.25


@pytest.mark.parametrize(
    ("cut", "expected"),
    [
        (b'{"uuid":"u","createdAt":1700000000,"data":{"command":"O:8:', 1700000000.0),
        (b'{"pushedAt":"1700000001.5","createdAt":1700000000,"data":"xx', 1700000001.5),
        (b'{"createdAt" : 1700000000 }', 1700000000.0),
        # The number runs into the cut: it may be missing digits, so it is not taken.
        (b'{"data":"x","createdAt":17000', None),
        (b'{"pushedAt":"17000', None),
        (b'{"data":"' + b"x" * 4096, None),
        (b'{"createdAt":"soon","data":"x', None),
    ],
)
def test_laravel_enqueued_at_in_a_cut_payload(cut: bytes, expected: float | None) -> None:
    assert laravel_enqueued_at(cut, True) == expected


def test_only_a_cut_payload_is_searched_as_text() -> None:
    # Whole but invalid JSON keeps its old answer: no time.
    assert laravel_enqueued_at(b'{"createdAt":1700000000,') is None
    assert laravel_enqueued_at(b'{"createdAt":1700000000,', True) == 1700000000.0
    # A whole payload is parsed as JSON even when flagged (one exactly at the cap).
    assert laravel_enqueued_at(b'{"data":{"createdAt":1},"createdAt":2}', True) == 2.0
    assert sidekiq_enqueued_at(b'{"enqueued_at":1700000000250,"args":["', True) == 1700000000.25


def test_read_plan_sums_by_state_and_ignores_payload_of_empty_queue() -> None:
    plan = LAYOUTS["bullmq"].plan("bull:", "q")
    reading = read_plan(plan, [2, 1, 3, 4, 5, 6], None)
    assert reading.jobs == {"pending": 6, "reserved": 4, "delayed": 5, "failed": 6}
    laravel = LAYOUTS["laravel"].plan("", "q")
    assert read_plan(laravel, [0, 0, 0], b'{"createdAt": 5}').oldest is None
    assert read_plan(laravel, [1, 0, 0], b'{"createdAt": 5}').oldest == 5.0


def test_bullmq_oldest_waiting_job_is_read_from_its_hash() -> None:
    plan = LAYOUTS["bullmq"].plan("bull:", "render")
    assert plan.peek is not None
    assert plan.peek.lookup is not None
    assert (plan.peek.key, plan.peek.index) == ("bull:render:wait", -1)
    assert plan.peek.lookup.key(b"42") == "bull:render:42"
    parse = plan.peek.lookup.parse
    assert parse([b"1700000000250", b"0"]) == 1700000000.25
    # A delayed job promoted to `wait` waits from its creation plus its delay.
    assert parse([b"1700000000000", b"60000"]) == 1700000060.0
    assert parse([b"1700000000000", None]) == 1700000000.0
    assert parse([None, None]) is None
    assert parse([b"soon", b"0"]) is None
    assert parse([b"1700000000000", b"x"]) == 1700000000.0


def test_select_queues_keeps_configured_and_caps_discovered_by_name() -> None:
    configured, kept, dropped = select_queues(["z"], {"b", "a", "z", "c"}, 3)
    assert (configured, kept, dropped) == (["z"], ["a", "b"], 1)
    assert select_queues([], {"a"}, 5) == ([], ["a"], 0)


def test_merge_readings_of_the_same_label() -> None:
    merged = merge_readings(
        [
            QueueReading("q", {"pending": 1}, 20.0),
            QueueReading("q", {"pending": 2, "delayed": 1}, 10.0),
            QueueReading("r", {"pending": 0}, None),
        ]
    )
    assert merged == [
        QueueReading("q", {"pending": 3, "delayed": 1}, 10.0),
        QueueReading("r", {"pending": 0}, None),
    ]
