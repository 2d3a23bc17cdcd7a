"""Benchmark: backup integrity check (isal, streaming) vs `gzip -t` on the same ≥ 500 MB file.

Writes a mariadb-dump-like .sql.gz of compressible-but-not-trivial rows to /tmp, then times,
interleaved and repeated, maintwatch's `verify_file` (CRC of every member + dump trailer),
`gzip -t`, and Python's stdlib `gzip` for reference. Prints medians and ratios; deletes the file.

    .venv/bin/python benchmarks/backup_verify.py [--size-mb 520] [--runs 3]
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from isal import isal_zlib

from exporter.collectors.backups.verify import verify_file

HEADER = b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n"
TRAILER = b"\n-- Dump completed on 2025-05-01 12:00:00\n"


def rows_block(seed: int, size: int) -> bytes:
    """Return ~`size` bytes of INSERT rows: repeated words, random ids, hex and decimals."""
    rnd = random.Random(seed)
    words = [rnd.randbytes(rnd.randint(3, 9)).hex() for _ in range(4000)]
    out: list[bytes] = []
    total = 0
    while total < size:
        # Why S608 is ignored: benchmark file content, never run against a database.
        line = (
            f"INSERT INTO `orders` VALUES ({rnd.randrange(10**9)},'{rnd.choice(words)}',"  # noqa: S608
            f"'{rnd.choice(words)} {rnd.choice(words)}',{rnd.random() * 1000:.2f},"
            f"'{rnd.randbytes(8).hex()}','2025-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}');\n"
        ).encode()
        out.append(line)
        total += len(line)
    return b"".join(out)


def make_file(path: Path, target_mb: int) -> int:
    """Write a gzip file of at least `target_mb` MB; return the uncompressed size."""
    blocks = [rows_block(seed, 4 << 20) for seed in range(8)]  # 32 MB of distinct content
    comp = isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)
    raw = 0
    with path.open("wb") as out:
        out.write(comp.compress(HEADER))
        i = 0
        while out.tell() < target_mb * 1_000_000:
            block = blocks[i % len(blocks)]
            raw += len(block)
            out.write(comp.compress(block))
            i += 1
        out.write(comp.compress(TRAILER) + comp.flush())
    return raw + len(HEADER) + len(TRAILER)


def ours(path: Path) -> None:
    verdict = verify_file(str(path), threading.Event())
    if verdict is None or not verdict.ok:
        raise SystemExit(f"verification failed: {verdict}")


def gzip_t(path: Path) -> None:
    subprocess.run(["gzip", "-t", str(path)], check=True)


def stdlib(path: Path) -> None:
    with gzip.open(path, "rb") as fh:
        while fh.read(1 << 20):
            pass


def child_rss_mb(path: Path) -> float:
    """Return the max RSS of a fresh interpreter that imports maintwatch and checks `path`."""
    code = (
        "import sys, threading; from exporter.collectors.backups.verify import verify_file; "
        "assert verify_file(sys.argv[1], threading.Event()).ok"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    # gzip -t children ran earlier with a few MB; the Python child is the maximum.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def timed(fn: Callable[[Path], None], path: Path) -> float:
    started = time.perf_counter()
    fn(path)
    return time.perf_counter() - started


def race(
    contenders: dict[str, Callable[[Path], None]], path: Path, runs: int, base: str, kind: str
) -> None:
    """Time every contender on `path`, print medians, MB/s of the file and speed vs `base`."""
    size = path.stat().st_size
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(runs):  # interleaved so machine load affects all alike
        for name, fn in contenders.items():
            times[name].append(timed(fn, path))
    base_s = statistics.median(times[base])
    print(f"{'tool':<24}{'median s':>10}{f'MB/s ({kind})':>12}{f'vs {base}':>13}   runs")
    for name, spent in times.items():
        med = statistics.median(spent)
        spread = " ".join(f"{r:.2f}" for r in spent)
        print(f"{name:<24}{med:>10.2f}{size / 1e6 / med:>12.0f}{base_s / med:>12.2f}x   {spread}")
    tracemalloc.start()
    contenders["maintwatch verify_file"](path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"verify_file peak Python allocations: {peak / 1e6:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=520)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("gzip") is None:
        raise SystemExit("gzip is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="mw-verify-bench-", dir="/tmp"))
    path = workdir / "tongacp_db_20250501120000.sql.gz"
    try:
        raw = make_file(path, args.size_mb)
        size = path.stat().st_size
        print(f"file: {size / 1e6:.0f} MB gzip, {raw / 1e6:.0f} MB uncompressed")
        contenders = {"maintwatch verify_file": ours, "gzip -t": gzip_t, "python gzip": stdlib}
        race(contenders, path, args.runs, "gzip -t", "gz")
        print(f"verify_file process max RSS (fresh child): {child_rss_mb(path):.0f} MB")
    finally:
        shutil.rmtree(workdir)
        print(f"deleted {workdir}")


if __name__ == "__main__":
    os.nice(5)  # a shared machine: do not starve other people's test runs
    main()
