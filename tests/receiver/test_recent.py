"""Page views arriving together share one read; a second later, or after a change, they don't."""

from __future__ import annotations

import asyncio

import pytest

from receiver.web.recent import Recent
from tests.receiver._helpers import FakeClock


async def test_views_arriving_together_share_one_read() -> None:
    loads = 0
    release = asyncio.Event()

    async def load() -> str:
        nonlocal loads
        loads += 1
        await release.wait()
        return "rows"

    recent: Recent[str] = Recent()
    views = [asyncio.create_task(recent.get("incident-1", load)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*views) == ["rows"] * 5
    assert loads == 1


async def test_entries_expire_and_forget_drops_them() -> None:
    clock = FakeClock()
    recent: Recent[int] = Recent(ttl=1.0, clock=clock)
    counter = iter(range(100))

    async def load() -> int:
        return next(counter)

    assert await recent.get("k", load) == 0
    assert await recent.get("k", load) == 0
    clock.advance(1.0)
    assert await recent.get("k", load) == 1
    recent.forget()
    assert await recent.get("k", load) == 2


async def test_a_failed_read_is_not_shared_later() -> None:
    recent: Recent[str] = Recent()
    attempts = 0

    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise OSError("store away")
        return "rows"

    with pytest.raises(OSError, match="store away"):
        await recent.get("k", flaky)
    assert await recent.get("k", flaky) == "rows"


async def test_one_viewer_leaving_does_not_cancel_the_shared_read() -> None:
    release = asyncio.Event()

    async def load() -> str:
        await release.wait()
        return "rows"

    recent: Recent[str] = Recent()
    first = asyncio.create_task(recent.get("k", load))
    second = asyncio.create_task(recent.get("k", load))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == "rows"
