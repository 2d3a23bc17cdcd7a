"""Benchmark: ZIP backup integrity check (every member's CRC) vs `unzip -t` on the same archive.

Writes a Spatie laravel-backup-like archive to /tmp (a mariadb-dump of compressible rows plus
many small storage files, deflated), then times, interleaved and repeated, maintwatch's
`verify_file`, `unzip -tq` and Python's `zipfile.testzip()`. Prints medians, ratios and the
check's peak Python allocations; deletes the archive.

    .venv/bin/python benchmarks/backup_zip.py [--size-mb 300] [--files 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import zipfile
from pathlib import Path

from backup_verify import HEADER, TRAILER, race, rows_block

from exporter.collectors.backups.verify import verify_file


def make_archive(path: Path, target_mb: int, files: int) -> int:
    """Write the archive; return the uncompressed bytes it holds."""
    blocks = [rows_block(seed, 4 << 20) for seed in range(8)]
    raw = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("db-dumps/mysql-tongacp.sql", "w", force_zip64=True) as dump:
            dump.write(HEADER)
            i = 0
            while path.stat().st_size < target_mb * 1_000_000:
                dump.write(blocks[i % len(blocks)])
                raw += len(blocks[i % len(blocks)])
                i += 1
            dump.write(TRAILER)
        for n in range(files):
            body = blocks[n % len(blocks)][(n * 977) % 4096 : (n * 977) % 4096 + 2000]
            zf.writestr(f"var/www/tongacp/storage/app/public/u{n:06d}.txt", body)
            raw += len(body)
    return raw


def ours(path: Path) -> None:
    verdict = verify_file(str(path), threading.Event())
    if verdict is None or not verdict.ok:
        raise SystemExit(f"verification failed: {verdict}")


def unzip_t(path: Path) -> None:
    subprocess.run(["unzip", "-tq", str(path)], check=True, stdout=subprocess.DEVNULL)


def testzip(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        if zf.testzip() is not None:
            raise SystemExit("zipfile.testzip found a bad member")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("unzip") is None:
        raise SystemExit("unzip is not installed")
    workdir = Path(tempfile.mkdtemp(prefix="mw-zip-bench-", dir="/tmp"))
    path = workdir / "2026-12-06-02-00-00.zip"
    try:
        raw = make_archive(path, args.size_mb, args.files)
        size = path.stat().st_size
        members = args.files + 1
        print(f"file: {size / 1e6:.0f} MB zip, {raw / 1e6:.0f} MB uncompressed, {members} members")
        contenders = {
            "maintwatch verify_file": ours,
            "unzip -t": unzip_t,
            "python testzip": testzip,
        }
        race(contenders, path, args.runs, "unzip -t", "zip")
    finally:
        shutil.rmtree(workdir)
        print(f"deleted {workdir}")


if __name__ == "__main__":
    os.nice(5)  # a shared machine: do not starve other people's test runs
    main()
