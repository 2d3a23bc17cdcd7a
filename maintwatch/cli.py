"""Command-line flags shared by both services, spelled like Prometheus' own tools."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

from maintwatch import heap, loop
from maintwatch.configload import ConfigError
from maintwatch.logs import LEVELS


def add_common_flags(parser: argparse.ArgumentParser, config: str, listen: str) -> None:
    """Add --config.file, --web.listen-address, --log.level, --log.format, --event-loop and
    --check-config."""
    parser.add_argument(
        "--config.file",
        dest="config_file",
        default=config,
        help="YAML config, relative to the working directory (default: %(default)s)",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=listen,
        help="host:port to serve "
        + ("(default: %(default)s)" if listen else "(default: `listen` in the config)"),
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=LEVELS,
        help="(default: %(default)s)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="logfmt",
        choices=("logfmt", "json"),
        help="(default: %(default)s)",
    )
    parser.add_argument(
        "--event-loop",
        dest="event_loop",
        default="auto",
        choices=loop.CHOICES,
        help="auto: uvloop when installed, else asyncio (default: %(default)s)",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the config, print every problem and exit (non-zero when invalid)",
    )


def split_listen_address(address: str) -> tuple[str, int]:
    """Split `host:port` (host may be empty, or `[::1]`) into (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--web.listen-address: expected host:port, got {address!r}")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - an exporter listens on all interfaces by default
    return host, int(port)


def print_problems(exc: ConfigError) -> int:
    """Print every config problem to stderr, then a count; return the exit code (1)."""
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    print(f"{len(exc.problems)} problem(s) in the configuration", file=sys.stderr)
    return 1


async def run_until_stopped(on_reload: Callable[[], Awaitable[None]]) -> None:
    """Return on SIGTERM or SIGINT; run `on_reload` for each SIGHUP, one at a time.

    The service has started: what it built is settled out of the garbage collector's way,
    and again after each reload.
    """
    heap.settle()
    stop = asyncio.Event()
    reloads: asyncio.Queue[None] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reloads.put_nowait, None)

    async def reloader() -> None:
        while True:
            await reloads.get()
            await on_reload()
            heap.settle()

    task = asyncio.create_task(reloader(), name="reload-on-sighup")
    try:
        await stop.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
