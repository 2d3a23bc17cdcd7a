"""Benchmark: one refresh of a 100 000-file backup set, and whether memory stays flat.

Creates the files (names with timestamps, as `date +%Y%m%d%H%M%S` writes them) in /tmp, then
times, interleaved: the collector's refresh (scan + name parsing + volume + families), a naive
Python listing (`glob` + `stat` + `strptime` + sort) and `find -printf` for reference. Reports
medians, tracemalloc peak of one refresh, and RSS before/after many refreshes. Deletes the files.

    .venv/bin/python benchmarks/backup_scan.py [--files 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from exporter.collectors.backups.collector import BackupsCollector
from exporter.collectors.backups.config import BackupSetConfig
from exporter.collectors.base import Context

PATTERN = "tongacp_db_%Y%m%d%H%M%S.sql.gz"


def make_files(directory: Path, count: int) -> None:
    base = datetime(2015, 1, 1, tzinfo=UTC).timestamp()
    for i in range(count):
        name = datetime.fromtimestamp(base + i * 3600, UTC).strftime(PATTERN)
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(fd, b"x" * (i % 100))
        os.close(fd)


def naive(directory: Path) -> int:
    """List the way a quick script would: glob, stat each, parse each name, sort everything."""
    items = []
    for path in glob.glob(str(directory / "tongacp_db_*.sql.gz")):
        info = os.stat(path)
        when = datetime.strptime(os.path.basename(path), PATTERN).replace(tzinfo=UTC)
        items.append((when.timestamp(), info.st_size, path))
    items.sort()
    return len(items)


def find_printf(directory: Path) -> int:
    out = subprocess.run(
        [
            "find",
            str(directory),
            "-maxdepth",
            "1",
            "-name",
            "tongacp_db_*.sql.gz",
            "-printf",
            "%s %T@\n",
        ],
        check=True,
        capture_output=True,
    ).stdout
    return out.count(b"\n")


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="mw-scan-bench-", dir="/tmp"))
    try:
        started = time.perf_counter()
        make_files(workdir, args.files)
        print(f"created {args.files} files in {time.perf_counter() - started:.1f}s")
        asyncio.run(run(workdir, args.files, args.runs))
    finally:
        shutil.rmtree(workdir)
        print(f"deleted {workdir}")


async def run(directory: Path, count: int, runs: int) -> None:
    config = BackupSetConfig(
        name="bench", directory=directory, timestamp=PATTERN, timezone="UTC", verify="none"
    )
    collector = BackupsCollector(config, Context(logger=structlog.get_logger("bench")))

    async def refresh() -> int:
        await collector.refresh()
        return count

    contenders: dict[str, Callable[[], object]] = {
        "maintwatch refresh": refresh,
        "naive glob+stat+strptime": lambda: naive(directory),
        "find -printf": lambda: find_printf(directory),
    }
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, fn in contenders.items():
            started = time.perf_counter()
            result = fn()
            if asyncio.iscoroutine(result):
                await result
            times[name].append(time.perf_counter() - started)
    ours = statistics.median(times["maintwatch refresh"])
    print(f"{'method':<28}{'median s':>10}{'vs ours':>9}   runs")
    for name, values in times.items():
        med = statistics.median(values)
        spread = " ".join(f"{v:.3f}" for v in values)
        print(f"{name:<28}{med:>10.3f}{med / ours:>8.2f}x   {spread}")

    tracemalloc.start()
    await collector.refresh()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    before = rss_mb()
    for _ in range(20):
        await collector.refresh()
    after = rss_mb()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"one refresh: tracemalloc peak {peak / 1e6:.2f} MB")
    print(f"RSS before 20 more refreshes {before:.1f} MB, after {after:.1f} MB")
    print(f"process max RSS {maxrss:.0f} MB")
    await collector.close()


if __name__ == "__main__":
    os.nice(5)  # a shared machine: do not starve other people's test runs
    main()
