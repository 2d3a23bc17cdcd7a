"""Structured logging (logfmt or JSON) with fixed event names, shared by both services."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO, cast

import structlog

LogFormat = Literal["logfmt", "json"]
LEVELS = ("debug", "info", "warn", "warning", "error")
Settings = tuple[str, LogFormat]  # level, format: what a child process needs to log alike
_settings: Settings = ("info", "logfmt")


class _CurrentStderr:
    """Write to whatever `sys.stderr` is now, not the stream that was current at configure time.

    Test runners swap and close stderr per test; a logger bound to an old stream would fail.
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "info", fmt: LogFormat = "logfmt", stream: Any = None) -> None:
    """Configure structlog and the stdlib root logger to write one event per line."""
    global _settings
    _settings = (level, fmt)
    numeric = logging.getLevelName("WARNING" if level == "warn" else level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.processors.LogfmtRenderer(key_order=["ts", "level", "event"])
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(stream or cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
    # Libraries (aiohttp access log, asyncio) log through stdlib; keep them quiet unless debugging.
    logging.basicConfig(level=max(numeric, logging.WARNING), stream=stream or _CurrentStderr())


def settings() -> Settings:
    """Return the level and format last configured."""
    return _settings


def get_logger(component: str) -> structlog.stdlib.BoundLogger:
    """Return a logger bound to a component name, resolved against the config now.

    Call it after `configure`. A lazy proxy would rebuild its logger on every call (first-use
    caching is off so tests can reconfigure), which costs each webhook a few microseconds per
    event, filtered out or not; a resolved filtering logger makes a filtered event a no-op.
    """
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(component=component).bind()
    return logger
