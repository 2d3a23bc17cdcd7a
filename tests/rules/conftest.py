"""A Prometheus holding three hours of backfilled maintwatch history, shared by the rules tests."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.rules._prometheus import openmetrics, running_prometheus

MINUTES = 180
LABELS = 'job="maintwatch",instance="shop-1:9839"'


def _spans(minute: int, spans: dict[tuple[int, int], float], default: float) -> float:
    return next((v for (a, b), v in spans.items() if a <= minute < b), default)


# Per minute of history: a backlog above 1000 for 20 min, above 2000 for 15 min, a 5-minute
# spike shorter than `for`, a long stretch under 1000; connections at 85 % then 97 %.
QUEUE = {(20, 40): 1500, (70, 85): 2500, (120, 125): 3000, (150, 175): 800}
CONNECTIONS = {(30, 50): 85, (100, 110): 97}


def history_series(end: float) -> dict[str, list[tuple[float, float]]]:
    """Return the backfilled series: one sample a minute for MINUTES minutes before `end`."""
    minutes = range(MINUTES)
    at = [end - (MINUTES - m) * 60 for m in minutes]

    def series(values: list[float]) -> list[tuple[float, float]]:
        return list(zip(at, values, strict=True))

    return {
        f'maintwatch_queue_jobs{{{LABELS},connection="redis",queue="default",state="pending"}}':
            series([_spans(m, QUEUE, 10) for m in minutes]),
        f'maintwatch_db_connections{{{LABELS},database="app"}}':
            series([_spans(m, CONNECTIONS, 50) for m in minutes]),
        f'maintwatch_db_max_connections{{{LABELS},database="app"}}': series([100] * MINUTES),
        f'maintwatch_backup_files{{{LABELS},backup="db"}}': series([7] * MINUTES),
        f'maintwatch_backup_last_verify_success{{{LABELS},backup="db"}}': series([1] * MINUTES),
    }  # fmt: skip


@dataclass(frozen=True)
class History:
    """The running Prometheus and the range its history covers."""

    url: str
    start: float
    end: float


@pytest.fixture(scope="session")
def history_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """Run Prometheus (1m scrape and evaluation, no rules) over the backfilled history.

    The history runs half an hour past start-up, so "now" has data in every test of the
    session; with nothing to scrape, Prometheus never appends a sample it would reject.
    """
    work: Path = tmp_path_factory.mktemp("history-prometheus")
    end = time.time() // 60 * 60 + 1800
    config = {"global": {"scrape_interval": "1m", "evaluation_interval": "1m"}}
    with running_prometheus(work, config, openmetrics(history_series(end))) as url:
        yield History(url, end - MINUTES * 60, end - 60)
