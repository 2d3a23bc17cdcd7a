"""Hostile backup files: a zstd bomb, a frame asking for a huge window, a file that takes
for ever. Each fails its own check, in bounded memory and time, and never holds up another
set's check.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import zlib
from pathlib import Path

from exporter.collectors.backups.collector import BackupsCollector
from exporter.collectors.backups.streams import ZSTD_MAGIC
from exporter.collectors.backups.verify import verify_file
from exporter.collectors.backups.worker import TURNS, ScheduledPace
from exporter.collectors.base import Context
from tests.exporter._backups_helpers import make_collector, mysqldump_text, until, write, write_gzip
from tests.exporter.conftest import refresh

BLOCK = 128 << 10  # the largest zstd block: what one 4-byte RLE block decodes to


def rle_frame(size: int, window_log: int = 20) -> bytes:
    """One zstd frame of `size` zero bytes made of RLE blocks: ~32 768 times smaller."""
    count = size // BLOCK
    block = (BLOCK << 3 | 1 << 1).to_bytes(3, "little") + b"\0"
    last = (BLOCK << 3 | 1 << 1 | 1).to_bytes(3, "little") + b"\0"
    descriptor = bytes([0, (window_log - 10) << 3])  # no content size, no checksum
    return ZSTD_MAGIC + descriptor + block * (count - 1) + last


def peak_rss_of_a_check(path: Path) -> tuple[str, float]:
    """Verify `path` in a fresh process; return its verdict and peak RSS in MiB (VmHWM)."""
    code = (
        "import sys, threading; from exporter.collectors.backups.verify import verify_file; "
        "print(verify_file(sys.argv[1], threading.Event())); "
        "print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    verdict, peak_kib = result.stdout.splitlines()
    return verdict, int(peak_kib) / 1024


def test_a_zstd_bomb_is_checked_in_bounded_memory(tmp_path: Path) -> None:
    # 1 GiB of zeros in one 32 KiB frame: one decompress call used to return all of it.
    path = write(tmp_path / "db.zst", rle_frame(1 << 30))
    verdict, peak = peak_rss_of_a_check(path)
    assert verdict == "Verdict(ok=True, format='zstd', detail='CRC ok')"
    assert peak < 150


def test_a_gzip_bomb_is_checked_in_bounded_memory(tmp_path: Path) -> None:
    squeezer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip member
    zeros = bytes(1 << 20)
    data = b"".join(squeezer.compress(zeros) for _ in range(256)) + squeezer.flush()
    verdict, peak = peak_rss_of_a_check(write(tmp_path / "db.gz", data))
    assert verdict == "Verdict(ok=True, format='gzip', detail='CRC ok')"
    assert peak < 150


def test_a_frame_asking_for_a_huge_window_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "db.zst", rle_frame(1 << 20, window_log=31))
    verdict = verify_file(str(path), threading.Event())
    assert verdict is not None
    assert not verdict.ok
    assert verdict.detail == (
        "zstd frame 1: window of 2048 MiB over the 128 MiB limit (corrupt or hostile)"
    )


def test_a_check_over_its_budget_fails(tmp_path: Path) -> None:
    # 1 TiB of zeros in 32 MiB of frames: minutes of work, stopped after its budget.
    path = write(tmp_path / "db.zst", rle_frame(1 << 30) * 1024)
    pace = ScheduledPace(threading.Event(), TURNS, budget=0.5)
    try:
        verdict = verify_file(str(path), pace)
    finally:
        pace.finish()
    assert verdict is not None
    assert not verdict.ok
    assert verdict.detail == (
        "stopped after its verify_budget of 0.5s of work (corrupt, hostile, or too big for "
        "the budget)"
    )


async def test_hostile_files_do_not_starve_another_sets_check(
    tmp_path: Path, context: Context
) -> None:
    hostile = []
    for name in ("h1", "h2"):  # as many as two verify threads would have had
        directory = tmp_path / name
        directory.mkdir()
        write(directory / "db.zst", rle_frame(1 << 30) * 256)  # 256 GiB of zeros
        hostile.append(
            make_collector(context, name=name, directory=str(directory), verify_budget=5)
        )
    normal_dir = tmp_path / "normal"
    normal_dir.mkdir()
    normal = make_collector(context, name="normal", directory=str(normal_dir))
    try:
        for collector in hostile:
            await refresh(collector)  # their checks start now and run for a long while
        await until(lambda: _running(hostile))
        # A new dump of another set arrives while both hostile files are being read.
        write_gzip(normal_dir / "db.sql.gz", mysqldump_text(100))

        async def normal_verified() -> float | None:
            samples = await refresh(normal)
            return samples.get("maintwatch_backup_last_verify_success", backup="normal")

        assert await until(normal_verified, timeout=60) == 1
        for collector in hostile:  # still at work: the normal set did not wait for them
            assert collector.verifier is not None
            assert collector.verifier.running is not None

        async def hostile_failed() -> list[float] | None:
            values = []
            for collector in hostile:
                samples = await refresh(collector)
                value = samples.get("maintwatch_backup_last_verify_success", backup=collector.name)
                values.append(value)
            return None if None in values else [v for v in values if v is not None]

        assert await until(hostile_failed, timeout=120) == [0, 0]
    finally:
        for collector in [*hostile, normal]:
            await collector.close()


async def _running(collectors: list[BackupsCollector]) -> bool | None:
    verifiers = [c.verifier for c in collectors]
    return True if all(v is not None and v.running for v in verifiers) else None
