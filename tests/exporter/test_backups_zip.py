"""ZIP backups (Spatie laravel-backup, `zip -r`): every member's CRC, streaming, ZIP64."""

from __future__ import annotations

import os
import struct
import subprocess
import threading
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from exporter.collectors.backups.verify import Cancelled, Verdict, verify_file
from exporter.collectors.base import Context
from tests.conftest import require_tool
from tests.exporter._backups_helpers import (
    HOUR,
    flip_bit,
    mysqldump_text,
    sql_body,
    truncate,
    verify_of,
)


def check(path: Path, verify: str = "auto", cancel: threading.Event | None = None) -> Verdict:
    verdict = verify_file(str(path), cancel or threading.Event(), verify=verify)
    assert verdict is not None
    return verdict


def settle(path: Path) -> None:
    """Date the file an hour back, so the collector judges it (it is no longer written)."""
    info = path.stat()
    os.utime(path, (info.st_atime - HOUR, info.st_mtime - HOUR))


def spatie_zip(path: Path, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Write a backup laid out like laravel-backup's: the DB dump plus the app's files."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        archive.writestr("db-dumps/mysql-tongacp.sql", mysqldump_text(400))
        for i in range(40):
            archive.writestr(f"var/www/tongacp/storage/app/public/file{i}.txt", sql_body(30, i))
        archive.writestr("var/www/tongacp/storage/app/public/empty.txt", b"")
    return path


@pytest.mark.parametrize(
    "compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED, zipfile.ZIP_BZIP2]
)
def test_every_member_is_checked(tmp_path: Path, compression: int) -> None:
    verdict = check(spatie_zip(tmp_path / "2026-12-06-02-00-00.zip", compression))
    assert verdict.ok, verdict
    assert verdict.format == "zip"
    assert verdict.detail == "42 of 42 members CRC ok"
    assert check(tmp_path / "2026-12-06-02-00-00.zip", verify="zip").ok


def test_real_zip_cli_archive(tmp_path: Path) -> None:
    zip_cli = require_tool("zip")
    tree = tmp_path / "storage" / "app"
    tree.mkdir(parents=True)
    for i in range(20):
        (tree / f"upload{i}.bin").write_bytes(os.urandom(2000) + bytes(20000))
    archive = tmp_path / "backup.zip"
    subprocess.run([zip_cli, "-qr", str(archive), "storage"], cwd=tmp_path, check=True)
    verdict = check(archive)
    assert verdict.ok, verdict
    assert verdict.detail == "22 of 22 members CRC ok"  # 20 files and 2 directories


def test_truncated_zip_fails(tmp_path: Path) -> None:
    path = spatie_zip(tmp_path / "cut.zip")
    truncate(path, 0.6)
    verdict = check(path)
    assert not verdict.ok
    assert "cut short" in verdict.detail


def test_bit_flip_in_member_data_fails(tmp_path: Path) -> None:
    path = spatie_zip(tmp_path / "flipped.zip", zipfile.ZIP_STORED)
    # The dump is the first member: a flip at 10 % lands inside its stored data.
    flip_bit(path, 0.1)
    verdict = check(path)
    assert not verdict.ok
    assert verdict.detail == "db-dumps/mysql-tongacp.sql: CRC-32 mismatch (data damaged)"


def test_bit_flip_in_deflated_member_fails(tmp_path: Path) -> None:
    path = spatie_zip(tmp_path / "flipped.zip")
    flip_bit(path, 0.2)
    verdict = check(path)
    assert not verdict.ok
    assert verdict.format == "zip"
    assert "CRC-32 mismatch" in verdict.detail or "deflate data damaged" in verdict.detail


def test_damaged_central_directory_fails(tmp_path: Path) -> None:
    path = spatie_zip(tmp_path / "cd.zip")
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x01\x02")
    data[at : at + 4] = b"XX\x01\x02"
    path.write_bytes(bytes(data))
    verdict = check(path)
    assert not verdict.ok
    assert "central directory record" in verdict.detail


def test_not_a_zip_when_forced_fails(tmp_path: Path) -> None:
    path = tmp_path / "dump.zip"
    path.write_bytes(mysqldump_text(10))
    verdict = check(path, verify="zip")
    assert not verdict.ok
    assert "no end of central directory record" in verdict.detail


def test_encrypted_members_are_counted_not_checked(tmp_path: Path) -> None:
    path = spatie_zip(tmp_path / "secret.zip", zipfile.ZIP_STORED)
    data = bytearray(path.read_bytes())
    # Mark every member encrypted (general purpose flag bit 0), as `zip -e` writes them.
    for sig, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(sig)
        while at >= 0:
            flags = struct.unpack_from("<H", data, at + flag_at)[0]
            struct.pack_into("<H", data, at + flag_at, flags | 1)
            at = data.find(sig, at + 4)
    path.write_bytes(bytes(data))
    verdict = check(path)
    assert verdict.ok, verdict
    assert verdict.detail.startswith("0 of 42 members CRC ok; 42 encrypted")


def test_zip64_with_more_than_65535_members(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for i in range(65_600):
            archive.writestr(f"f{i}", b"x")
    assert b"PK\x06\x06" in path.read_bytes()[-200:]
    verdict = check(path)
    assert verdict.ok, verdict
    assert verdict.detail == "65600 of 65600 members CRC ok"


def test_memory_stays_flat_on_a_large_member(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("db-dumps/huge.sql", "w") as member,
    ):
        for _ in range(128):
            member.write(bytes(1 << 20))  # 128 MiB of zeros: deflates to ~128 KiB
    tracemalloc.start()
    try:
        verdict = check(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert verdict.ok, verdict
    assert peak < 24 << 20, peak


def test_cancel_stops_a_zip_check(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        check(spatie_zip(tmp_path / "x.zip"), cancel=cancel)


async def test_spatie_backup_set_through_the_collector(tmp_path: Path, context: Context) -> None:
    # Seed 002: laravel-backup writes storage/app/<App Name>/<Y-m-d-H-i-s>.zip.
    folder = tmp_path / "storage" / "app" / "Interactive Examples"
    folder.mkdir(parents=True)
    path = spatie_zip(folder / "2026-12-06-02-00-00.zip")
    settle(path)
    fields = {"timestamp": "%Y-%m-%d-%H-%M-%S.zip", "timezone": "UTC"}
    assert await verify_of(context, path, **fields) == 1
    flip_bit(path, 0.3)
    assert await verify_of(context, path, **fields) == 0
