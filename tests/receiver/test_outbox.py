"""The delivery worker against both stores: retries, permanent failures, fallback, crashes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from receiver.appkeys import METRICS, STORE, WORKER
from receiver.delivery.channels import DeliveryError
from receiver.delivery.outbox import RetryRules, after_failure
from receiver.store import OutboxRow
from receiver.store.base import Fallback
from tests.receiver._helpers import (
    BASE_CONFIG,
    EVERYTHING,
    FakeClock,
    Running,
    Script,
    alert,
    payload,
    running,
    store_dsn,
    store_yaml,
)


@pytest.fixture(params=["sqlite", "postgres"])
async def rx(
    request: pytest.FixtureRequest, script: Script, clock: FakeClock, tmp_path: Path, unique: str
) -> AsyncIterator[Running]:
    """Serve a receiver whose worker the test drives; warnings go to sms (at-most-once)."""
    text = (
        BASE_CONFIG.replace("default_route: {channels: [chat]}", "default_route: {channels: [sms]}")
        .replace("delivery: {", "delivery: {fallback_channel: backup, ")
        .replace("send_timeout: 5s", "send_timeout: 200ms")
    )
    async with store_dsn(request.param, unique) as dsn:  # noqa: SIM117 - dsn feeds the 2nd
        async with running(text + store_yaml(request.param, tmp_path, dsn), clock) as served:
            yield served


async def tick(rx: Running) -> int:
    """Run one worker round."""
    return await rx.app[WORKER].run_once()


async def notifications(rx: Running) -> list[dict[str, Any]]:
    """Return the outbox rows of every incident."""
    out = []
    for incident in [i.to_json() for i in await rx.app[STORE].incidents(None, {}, 100)]:
        detail = (await rx.app[STORE].incident(incident["id"])).to_json()
        assert detail is not None
        out += detail["notifications"]
    return sorted(out, key=lambda n: n["id"])


def count(rx: Running, channel: str, outcome: str) -> float:
    """Return notifications_total for a channel and outcome."""
    value = rx.app[METRICS].registry.get_sample_value(
        "maintwatch_receiver_notifications_total", {"channel": channel, "outcome": outcome}
    )
    return value or 0.0


async def test_retryable_failure_is_delivered_later_once(
    rx: Running, script: Script, clock: FakeClock
) -> None:
    script.plan["pager"] = ["retry"]
    assert (await rx.post(payload(alert("a")))).status == 200
    await tick(rx)
    assert script.sent.get("pager") is None
    await tick(rx)
    assert script.calls["pager"] == 1  # backing off (10s × jitter ≥ 5s)
    clock.advance(10)
    await tick(rx)
    clock.advance(100)
    await tick(rx)
    assert len(script.sent["pager"]) == 1
    (row,) = await notifications(rx)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, "")
    assert (count(rx, "pager", "retry"), count(rx, "pager", "sent")) == (1, 1)


async def test_permanent_failure_recorded_and_fallback_used(
    rx: Running, script: Script, clock: FakeClock
) -> None:
    script.plan["pager"] = ["fail"]
    await rx.post(payload(alert("a")))
    await tick(rx)
    await tick(rx)
    first, fallback = await notifications(rx)
    assert first["status"] == "failed"
    assert first["last_error"] == "invalid recipient; falling back to backup"
    assert (fallback["channel"], fallback["status"], fallback["fallback_of"]) == (
        "backup",
        "sent",
        first["id"],
    )
    assert script.sent["backup"][0].title.startswith("[FIRING:1] DiskFull")


async def test_gives_up_after_max_attempts(rx: Running, script: Script, clock: FakeClock) -> None:
    script.plan["pager"] = ["retry", "retry", "retry"]
    script.plan["backup"] = ["crash"]  # the fallback does not fall back again
    await rx.post(payload(alert("a")))
    for _ in range(5):
        await tick(rx)
        clock.advance(120)
    first, fallback = await notifications(rx)
    assert first["attempts"] == 3
    assert first["last_error"] == (
        "provider answered 503 (gave up after 3 attempts); falling back to backup"
    )
    assert fallback["status"] == "failed"
    assert fallback["last_error"] == "unexpected RuntimeError: template bug"


async def test_at_most_once_row_claimed_but_never_started_is_sent_once(
    rx: Running, script: Script, clock: FakeClock
) -> None:
    await rx.post(payload(alert("a", severity="warning"), severity="warning"))
    await rx.post(payload(alert("b"), group="other"))
    # A worker claimed both rows and died before either request left.
    claimed = await rx.app[STORE].claim(clock(), EVERYTHING, 30.0, 5, 600.0)
    assert sorted(r.channel for r in claimed) == ["pager", "sms"]
    clock.advance(31)
    await tick(rx)
    await tick(rx)
    assert len(script.sent["sms"]) == 1  # provably never reached the provider: sent
    assert len(script.sent["pager"]) == 1
    assert {n["channel"]: n["status"] for n in await notifications(rx)} == {
        "pager": "sent",
        "sms": "sent",
    }


async def test_at_most_once_row_whose_request_may_have_left_falls_back(
    rx: Running, script: Script, clock: FakeClock
) -> None:
    await rx.post(payload(alert("a", severity="warning"), severity="warning"))
    (row,) = await rx.app[STORE].claim(clock(), EVERYTHING, 30.0, 5, 600.0)
    assert await rx.app[STORE].start(row, clock())  # the request left, then the worker died
    clock.advance(31)
    await tick(rx)  # the scripted SMS channel cannot ask its provider: unknown, fallback
    await tick(rx)
    assert "sms" not in script.calls
    sms, fallback = await notifications(rx)
    assert sms["status"] == "unknown"
    assert sms["last_error"].endswith("not resent (at-most-once); falling back to backup")
    assert (fallback["channel"], fallback["status"], fallback["fallback_of"]) == (
        "backup",
        "sent",
        sms["id"],
    )
    timeline = [e.detail for e in await rx.app[STORE].timeline(row.incident_id)]
    assert any(d.startswith("firing via sms: unknown") for d in timeline), timeline
    assert any(d.startswith("firing via backup: sent") for d in timeline), timeline
    fallbacks = rx.app[METRICS].registry.get_sample_value(
        "maintwatch_receiver_notification_fallbacks_total",
        {"channel": "sms", "outcome": "unknown"},
    )
    assert (fallbacks, count(rx, "sms", "unknown")) == (1.0, 1.0)


async def test_at_most_once_timeout_is_not_retried_but_falls_back(
    rx: Running, script: Script, clock: FakeClock
) -> None:
    script.plan["sms"] = ["hang"]
    await rx.post(payload(alert("a", severity="warning"), severity="warning"))
    await tick(rx)
    clock.advance(3600)
    await tick(rx)
    sms, fallback = await notifications(rx)
    assert sms["status"] == "unknown"
    assert (fallback["channel"], fallback["status"]) == ("backup", "sent")
    assert script.calls["sms"] == 1


async def test_sms_rate_limit_defers_not_drops(
    rx: Running, script: Script, clock: FakeClock
) -> None:
    for group in ("g1", "g2", "g3"):
        await rx.post(payload(alert("a", severity="warning"), group=group, severity="warning"))
    await tick(rx)
    assert len(script.sent["sms"]) == 2
    clock.advance(300)
    await tick(rx)
    assert len(script.sent["sms"]) == 2
    clock.advance(301)
    await tick(rx)
    assert len(script.sent["sms"]) == 3


RULES = RetryRules(3, 10.0, 60.0, 3600.0, Fallback("backup", False, None))


def sms_row(attempts: int = 1, started_at: float | None = None) -> OutboxRow:
    """Return a claimed at-most-once row."""
    return OutboxRow(1, 1, "sms", "firing", None, {}, attempts, True, 0.0, None, started_at)


@pytest.mark.parametrize(
    ("error", "ambiguous", "reconciles", "attempts", "expected"),
    [
        # Proven not sent (refused, 429): retried, the start mark cleared.
        (DeliveryError("refused", retryable=True), False, True, 1, ("pending", False, False)),
        # Maybe sent, the provider can be asked: retried with the mark kept (asked first).
        (DeliveryError("dropped", retryable=True), True, True, 1, ("pending", True, False)),
        # Maybe sent and no more attempts, or nobody to ask: unknown, and the fallback pages.
        (DeliveryError("dropped", retryable=True), True, True, 3, ("unknown", False, True)),
        (DeliveryError("timed out", retryable=True), True, False, 1, ("unknown", False, True)),
        # Proven not sent and permanent: failed, and the fallback pages.
        (DeliveryError("bad number", retryable=False), False, True, 1, ("failed", False, True)),
    ],
)
def test_after_failure_on_an_at_most_once_row(
    error: DeliveryError,
    ambiguous: bool,
    reconciles: bool,
    attempts: int,
    expected: tuple[str, bool, bool],
) -> None:
    result = after_failure(sms_row(attempts), error, 100.0, RULES, 0.5, ambiguous, reconciles)
    assert (result.outcome, result.maybe_sent, result.fallback is not None) == expected
