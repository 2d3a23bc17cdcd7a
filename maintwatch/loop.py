"""The event loop a service runs on: uvloop where it is installed, asyncio's own otherwise.

uvloop runs the loop, its sockets and its timers in C (libuv). A webhook is mostly loop work
(read the request, wake on the append's commit, write the answer), so on uvloop the receiver
takes the same webhooks with less CPU. `asyncio` stays selectable (`--event-loop`) to rule the
loop out when something misbehaves.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
CHOICES = ("auto", "uvloop", "asyncio")


def resolve(choice: str) -> str:
    """Return the loop `choice` names: `auto` is uvloop when installed, else asyncio."""
    if choice not in CHOICES:
        raise ValueError(f"--event-loop: expected one of {', '.join(CHOICES)}, got {choice!r}")
    if choice == "auto":
        return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    if choice == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise ValueError("--event-loop: uvloop is not installed (pip install uvloop)")
    return choice


def factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return the new-loop function for a resolved name (None: asyncio's default)."""
    if name == "asyncio":
        return None
    import uvloop

    new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return new_loop


def run(main: Coroutine[Any, Any, T], name: str) -> T:
    """Run `main` to completion on a new loop of the resolved `name`."""
    with asyncio.Runner(loop_factory=factory(name)) as runner:
        return runner.run(main)


def running() -> str:
    """Return the name of the running loop, for a child process to run on the same one."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"
