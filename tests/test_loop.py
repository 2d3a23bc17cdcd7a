"""The services' event loop: uvloop where installed, asyncio's own when asked."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from maintwatch import loop


async def _name() -> str:
    return loop.running()


def _run_in_thread(name: str) -> str:
    # A thread of its own: asyncio's loop becomes its thread's current loop, which on the main
    # thread would orphan (and leak) the loop pytest-asyncio left there.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(loop.run, _name(), loop.resolve(name)).result()


def test_auto_picks_uvloop_when_installed_and_each_choice_runs_on_its_loop() -> None:
    assert loop.resolve("auto") == "uvloop"  # a dependency on Linux
    for name in ("uvloop", "asyncio"):
        assert _run_in_thread(name) == name


def test_an_unknown_choice_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="--event-loop: expected one of auto, uvloop, asyncio"):
        loop.resolve("trio")
