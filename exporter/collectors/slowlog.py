"""Slow query log collector: tail a MySQL/MariaDB slow log, count entries, histogram durations."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import os
from collections.abc import Sequence

from prometheus_client.core import Metric
from pydantic import Field, field_validator

from exporter.collectors.base import CLOSE_WAIT, CollectError, Collector, Context, SkipLog
from exporter.collectors.shared_metrics import DB_SLOW_QUERIES_TOTAL, LOG_SKIPPED_FILES
from exporter.config import InstanceConfig
from exporter.logparse import SlowLogParser
from exporter.logtail import LogTail, TailError
from exporter.metrics import histogram
from exporter.paths import check_glob

DB_SLOW_QUERY_DURATION_SECONDS = histogram(
    "maintwatch_db_slow_query_duration_seconds", "Query_time of the entries in the slow query log."
)

DEFAULT_BUCKETS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
"""Suited to long_query_time = 1 s (entries below it appear when the threshold is lowered)."""


class SlowlogConfig(InstanceConfig):
    """One database's slow query log (`slow_query_log_file`), a path or a glob."""

    path: str = Field(min_length=1)
    from_beginning: bool = False
    buckets: list[float] = Field(default_factory=lambda: list(DEFAULT_BUCKETS), min_length=1)
    max_line_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_read_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not os.path.isabs(value):
            raise ValueError(f"must be an absolute path, got {value!r}")
        return check_glob(value)

    @field_validator("buckets")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        if any(not math.isfinite(b) or b <= 0 for b in value):
            raise ValueError("bucket bounds must be positive and finite (+Inf is implicit)")
        if any(a >= b for a, b in itertools.pairwise(value)):
            raise ValueError("bucket bounds must be strictly increasing")
        return value


class DurationHistogram:
    """Cumulative-on-read histogram of durations with fixed upper bounds."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = [*bounds, float("inf")]
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Add one duration (a value equal to a bound falls in that bucket, as `le` says)."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    @property
    def count(self) -> int:
        """Return the number of observations."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, float]]:
        """Return `(upper bound, observations <= bound)` pairs ending at +Inf."""
        out, running = [], 0
        for bound, count in zip(self.bounds, self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


class SlowlogCollector(Collector[SlowlogConfig]):
    """Count slow query log entries and their durations, following log rotation."""

    kind = "slowlog"
    label = "database"
    config_type = SlowlogConfig
    metrics = (
        LOG_SKIPPED_FILES,
        DB_SLOW_QUERIES_TOTAL,
        DB_SLOW_QUERY_DURATION_SECONDS,
    )

    def __init__(self, config: SlowlogConfig, context: Context) -> None:
        super().__init__(config, context)
        self._parser = SlowLogParser()
        self._histogram = DurationHistogram(config.buckets)
        state_file = None
        if context.state_dir:
            digest = hashlib.sha256(config.path.encode()).hexdigest()[:12]
            state_file = os.path.join(context.state_dir, f"slowlog-{self.name}-{digest}.json")
        self._tail = LogTail(
            config.path,
            from_beginning=config.from_beginning,
            max_line_bytes=config.max_line_bytes,
            max_read_bytes=config.max_read_bytes,
            state_file=state_file,
            logger=self.log,
        )
        self._skip_log = SkipLog(self.log, "log_files_skipped")

    async def refresh(self) -> Sequence[Metric]:
        """Read new slow log entries (in a thread) and return the counters."""
        try:
            await self.blocking.run(lambda: self._tail.poll(self._line))
        except TailError as exc:
            raise CollectError(str(exc)) from None
        except OSError as exc:
            raise CollectError(f"cannot read {exc.filename}: {exc.strerror}") from exc
        self._skip_log.report(self._tail.skipped)
        ms = self.metric_set()
        ms.add(LOG_SKIPPED_FILES, self._tail.skipped.count)
        ms.add(DB_SLOW_QUERIES_TOTAL, self._histogram.count)
        ms.add_histogram(
            DB_SLOW_QUERY_DURATION_SECONDS,
            self._histogram.cumulative(),
            self._histogram.sum,
        )
        return ms.families()

    def _line(self, line: bytes, truncated: bool) -> None:
        # Header lines are short; a cut line is query text, which never holds a Query_time.
        if truncated:
            self._parser.feed("")
            return
        duration = self._parser.feed(line.decode("utf-8", "replace"))
        if duration is not None:
            self._histogram.observe(duration)

    async def close(self) -> None:
        """Close the followed files, unless a poll is stuck in its thread (then leave them)."""
        await self.blocking.drain(CLOSE_WAIT)
        if self.blocking.idle:
            self._tail.close()
