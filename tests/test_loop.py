"""The services' event loop: uvloop where installed, asyncio's own when asked."""

from __future__ import annotations

import pytest

from maintwatch import loop


async def _name() -> str:
    return loop.running()


def test_auto_picks_uvloop_when_installed_and_each_choice_runs_on_its_loop() -> None:
    assert loop.resolve("auto") == "uvloop"  # a dependency on Linux
    for name in ("uvloop", "asyncio"):
        assert loop.run(_name(), loop.resolve(name)) == name


def test_an_unknown_choice_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="--event-loop: expected one of auto, uvloop, asyncio"):
        loop.resolve("trio")
