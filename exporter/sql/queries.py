"""Pure functions turning database rows into the values the databases collector exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from exporter.sql.base import TAG, Row

PG_STATES = (
    "active",
    "idle",
    "idle_in_transaction",
    "idle_in_transaction_aborted",
    "fastpath_function_call",
    "disabled",
)
_DISPLAY_NAME = re.compile(r'"displayName":\s*"((?:[^"\\]|\\.)*)"')
OTHER_JOBS = "other"
UNKNOWN_JOB = "unknown"


def pg_connection_states(rows: Iterable[Row]) -> dict[str, int]:
    """Return client connections by state (`idle in transaction` → `idle_in_transaction`)."""
    out = dict.fromkeys(PG_STATES, 0)
    for state, count in rows:
        key = re.sub(r"[^a-z]+", "_", str(state or "unknown").lower()).strip("_")
        out[key] = out.get(key, 0) + int(count)
    return out


def mysql_connection_states(status: Mapping[str, str]) -> dict[str, int]:
    """Return `active` (Threads_running) and `idle` (the rest of Threads_connected)."""
    connected = int(status.get("Threads_connected", 0))
    running = int(status.get("Threads_running", 0))
    return {"active": running, "idle": max(0, connected - running)}


@dataclass(frozen=True)
class FailedJobsQueue:
    """One queue's row of the failed_jobs summary query."""

    queue: str
    rows: int
    new: int  # rows with id above the watermark passed to the query
    last_failed: float | None
    max_id: int

    @classmethod
    def from_row(cls, row: Row) -> FailedJobsQueue:
        """Build from `(queue, count, new, last_failed_epoch, max_id)` (Decimals allowed)."""
        queue, rows, new, last, max_id = row
        return cls(
            str(queue),
            int(rows),
            int(new or 0),
            None if last is None else float(last),
            int(max_id or 0),
        )


@dataclass
class FailedJobsCounter:
    """Count new failures from an id watermark; the totals never go down.

    The first observation only sets the watermark (totals start at 0 for the queues seen), so
    `maintwatch_failed_jobs_total` means "failures since the exporter started". Deleting rows
    (`queue:retry`, `queue:flush`) lowers the gauge, never the counter.
    """

    watermark: int | None = None
    totals: dict[str, int] = field(default_factory=dict)

    def update(self, queues: Iterable[FailedJobsQueue]) -> dict[str, int]:
        """Add the new rows seen by the query that used `self.watermark`; move the watermark."""
        queues = list(queues)
        first = self.watermark is None
        for q in queues:
            self.totals[q.queue] = self.totals.get(q.queue, 0) + (0 if first else q.new)
        # The current max id, not the highest ever: after a flush new ids are counted from 0.
        self.watermark = max((q.max_id for q in queues), default=0)
        return dict(self.totals)

    def query_watermark(self) -> int:
        """Return the id above which rows count as new (0 before the first observation)."""
        return self.watermark or 0


def job_name(match: str | None) -> str:
    """Return the job class from a `"displayName":"…"` fragment of a Laravel payload."""
    if not match:
        return UNKNOWN_JOB
    found = _DISPLAY_NAME.search(match)
    if found is None:
        return UNKNOWN_JOB
    try:
        name = json.loads(f'"{found.group(1)}"')
    except json.JSONDecodeError:
        return UNKNOWN_JOB
    return str(name) or UNKNOWN_JOB


def failed_jobs_by_job(rows: Iterable[Row], top: int) -> dict[tuple[str, str], int]:
    """Return counts by (queue, job), keeping the `top` jobs by count and folding the rest."""
    counts: dict[tuple[str, str], int] = {}
    for queue, fragment, count in rows:
        key = (str(queue), job_name(fragment))
        counts[key] = counts.get(key, 0) + int(count)
    by_job: dict[str, int] = {}
    for (_, job), count in counts.items():
        by_job[job] = by_job.get(job, 0) + count
    kept = {j for j, _ in sorted(by_job.items(), key=lambda kv: (-kv[1], kv[0]))[:top]}
    out: dict[tuple[str, str], int] = {}
    for (queue, job), count in counts.items():
        key = (queue, job if job in kept else OTHER_JOBS)
        out[key] = out.get(key, 0) + count
    return out


@dataclass(frozen=True)
class QueueJobs:
    """Jobs of one queue in a Laravel `jobs` table by state."""

    queue: str
    pending: int = 0
    delayed: int = 0
    reserved: int = 0
    oldest_pending: float | None = None


def queue_jobs(rows: Iterable[Row], always: Iterable[str] = ()) -> list[QueueJobs]:
    """Build per-queue states from `(queue, pending, delayed, reserved, oldest)` rows.

    Queues named in `always` get zero rows when the table holds none of their jobs, so their
    series never disappear.
    """
    out = {q: QueueJobs(q) for q in always}
    for queue, pending, delayed, reserved, oldest in rows:
        out[str(queue)] = QueueJobs(
            str(queue),
            int(pending or 0),
            int(delayed or 0),
            int(reserved or 0),
            None if oldest is None else float(oldest),
        )
    return [out[q] for q in sorted(out)]


@dataclass(frozen=True)
class Statement:
    """Cumulative statistics of one normalized statement."""

    queryid: str
    calls: float
    seconds: float

    @property
    def mean(self) -> float:
        """Return the mean execution time in seconds."""
        return self.seconds / self.calls if self.calls else 0.0


def statements(rows: Iterable[Row], seconds_per_unit: float) -> list[Statement]:
    """Build statements from `(queryid, calls, total_time)` rows in the server's time unit."""
    return [
        Statement(str(qid), float(calls or 0), float(total or 0) * seconds_per_unit)
        for qid, calls, total in rows
        if qid is not None
    ]


def slow_statement_count(stats: Iterable[Statement], threshold: float) -> int:
    """Return how many statements have a mean execution time above `threshold` seconds."""
    return sum(1 for s in stats if s.mean > threshold)


def top_statements(stats: Iterable[Statement], n: int, exclude: set[str]) -> list[Statement]:
    """Return the `n` statements with the most total time, skipping ids in `exclude`."""
    ranked = sorted((s for s in stats if s.queryid not in exclude), key=lambda s: -s.seconds)
    return ranked[:n]


def is_own_query(text: str) -> bool:
    """Return True for statements the exporter itself sent (they start with the tag)."""
    return text.lstrip().startswith(TAG.strip())


def short_query(text: str, limit: int) -> str:
    """Collapse whitespace and truncate normalized query text for the `_info` metric."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
