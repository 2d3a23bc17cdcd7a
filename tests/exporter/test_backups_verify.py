"""Integrity checks on real files: gzip, zstd, tar, SQL dumps, real pg_dump/mariadb-dump output."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from exporter.collectors.backups.verify import Cancelled, Verdict, verify_file
from tests.conftest import require_tool
from tests.exporter._backups_helpers import flip_bit, mysqldump_text, sql_body, truncate, write

PG = ["-h", "127.0.0.1", "-U", "postgres"]
MARIADB = ["-h", "127.0.0.1", "-u", "root"]


def check(path: Path, verify: str = "auto", pg_restore: str = "pg_restore") -> Verdict | None:
    return verify_file(str(path), threading.Event(), verify=verify, pg_restore=pg_restore)


def ok(path: Path, **kwargs: str) -> Verdict:
    verdict = check(path, **kwargs)
    assert verdict is not None
    assert verdict.ok, verdict
    return verdict


def failed(path: Path, **kwargs: str) -> str:
    verdict = check(path, **kwargs)
    assert verdict is not None
    assert not verdict.ok, verdict
    return verdict.detail


def tarball(members: int = 30) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(members):
            data = (sql_body(50, seed=i) + "\n").encode()
            info = tarfile.TarInfo(f"storage/app/file{i}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


# --- gzip ------------------------------------------------------------------------------------


def test_gzip_sql_dump_passes_crc_and_trailer(tmp_path: Path) -> None:
    path = tmp_path / "tongacp_db_20250501120000.sql.gz"
    path.write_bytes(gzip.compress(mysqldump_text(20000)))
    verdict = ok(path)
    assert verdict.format == "sql.gzip"
    assert verdict.detail == "CRC ok, mariadb-dump completion trailer present"


def test_truncated_gzip_fails(tmp_path: Path) -> None:
    path = tmp_path / "db.sql.gz"
    path.write_bytes(gzip.compress(mysqldump_text(20000)))
    truncate(path, 0.7)
    assert failed(path) == "gzip member 1 truncated (unexpected end of file)"


def test_bit_flipped_gzip_fails(tmp_path: Path) -> None:
    path = tmp_path / "db.sql.gz"
    path.write_bytes(gzip.compress(os.urandom(50_000) + mysqldump_text(5000)))
    flip_bit(path, 0.5)
    assert failed(path).startswith("gzip member 1: ")


def test_flipped_crc_in_trailer_fails(tmp_path: Path) -> None:
    path = tmp_path / "data.gz"
    path.write_bytes(gzip.compress(os.urandom(10_000)))
    data = bytearray(path.read_bytes())
    data[-6] ^= 0x01  # inside the stored CRC32: the data decompresses but does not match
    path.write_bytes(bytes(data))
    assert "checksum" in failed(path).lower()


def test_gzip_without_trailer_inside_fails(tmp_path: Path) -> None:
    path = tmp_path / "db.sql.gz"
    path.write_bytes(gzip.compress(mysqldump_text(3000, trailer=False)))
    assert failed(path) == (
        "mariadb-dump has no '-- Dump completed' trailer (dump incomplete or truncated)"
    )


def test_multi_member_gzip(tmp_path: Path) -> None:
    # `cat a.gz b.gz` and pigz/bgzip write several members; the trailer is in the last one.
    path = tmp_path / "db.sql.gz"
    body = mysqldump_text(30000)
    cut = len(body) // 3
    path.write_bytes(gzip.compress(body[:cut]) + gzip.compress(body[cut:]) + b"\0" * 700)
    assert ok(path).detail == "CRC ok, mariadb-dump completion trailer present"
    path.write_bytes(gzip.compress(body[:cut]) + gzip.compress(body[cut:]) + b"junk")
    assert failed(path) == "trailing garbage after the last gzip member"


def test_plain_gzip_of_unknown_content_is_crc_checked(tmp_path: Path) -> None:
    path = tmp_path / "blob.gz"
    path.write_bytes(gzip.compress(os.urandom(100_000)))
    assert ok(path) == Verdict(True, "gzip", "CRC ok")


def test_forced_type_mismatch_fails(tmp_path: Path) -> None:
    path = write(tmp_path / "db.sql.gz", mysqldump_text(10))
    assert failed(path, verify="sql.gz") == "not a gzip file (its first bytes say otherwise)"


def test_empty_file_fails(tmp_path: Path) -> None:
    assert failed(write(tmp_path / "db.sql.gz", b"")) == "file is empty"


# --- tar / tar.gz / zstd ---------------------------------------------------------------------


def test_tar_and_tar_gz(tmp_path: Path) -> None:
    data = tarball()
    assert ok(write(tmp_path / "files.tar", data)).detail == (
        "30 members, end-of-archive marker present"
    )
    tgz = write(tmp_path / "files.tar.gz", gzip.compress(data))
    verdict = ok(tgz, verify="tar.gz")
    assert (verdict.format, verdict.detail) == (
        "tar.gzip",
        "CRC ok, 30 tar members, end marker present",
    )


def test_tar_gz_cut_at_member_boundary_fails(tmp_path: Path) -> None:
    # A gzip stream that is complete but holds a tar cut short (tar killed mid-archive).
    data = tarball()
    path = write(tmp_path / "files.tar.gz", gzip.compress(data[: len(data) // 2]))
    assert failed(path) == "tar archive truncated inside member 16 (stream ended)"


def test_real_tar_czf(tmp_path: Path) -> None:
    tar = require_tool("tar")
    src = tmp_path / "app"
    src.mkdir()
    for i in range(40):
        (src / f"upload{i}.bin").write_bytes(os.urandom(i * 100))
    path = tmp_path / "tongacp_files_20250501.tar.gz"
    subprocess.run([tar, "-czf", str(path), "-C", str(tmp_path), "app"], check=True)
    assert ok(path).detail == "CRC ok, 41 tar members, end marker present"
    truncate(path, 0.5)
    assert "truncated" in failed(path)


def zstd_frames(*parts: bytes) -> bytes:
    return b"".join(zstandard.ZstdCompressor(write_checksum=True).compress(p) for p in parts)


def test_zstd(tmp_path: Path) -> None:
    body = mysqldump_text(20000)
    path = write(tmp_path / "db.sql.zst", zstd_frames(body[:1000], body[1000:]))
    assert ok(path).detail == "CRC ok, mariadb-dump completion trailer present"
    flip_bit(path, 0.6)
    assert failed(path).startswith("zstd frame 2: ")
    path.write_bytes(zstd_frames(body)[:-100])
    assert failed(path) == "zstd frame 1 truncated (unexpected end of file)"
    path.write_bytes(zstd_frames(body) + b"garbage!")
    assert "trailing garbage" in failed(path)


# --- plain SQL dumps -------------------------------------------------------------------------


def test_mysqldump_style_with_and_without_trailer(tmp_path: Path) -> None:
    good = write(tmp_path / "good.sql", mysqldump_text())
    assert ok(good) == Verdict(True, "sql", "mariadb-dump completion trailer present")
    bad = write(tmp_path / "bad.sql", mysqldump_text(trailer=False))
    assert failed(bad) == (
        "mariadb-dump has no '-- Dump completed' trailer (dump incomplete or truncated)"
    )


def test_plain_unknown_file_has_nothing_to_check(tmp_path: Path) -> None:
    assert check(write(tmp_path / "notes.txt", b"just text\n")) is None


@pytest.fixture
def mariadb_db(unique: str) -> Iterator[str]:
    client = require_tool("mariadb")
    subprocess.run(
        [
            client,
            *MARIADB,
            "-e",
            # Why S608 is ignored: `unique` is the fixture's generated name, not outside input.
            f"CREATE DATABASE {unique}; USE {unique}; "  # noqa: S608
            "CREATE TABLE users (id INT PRIMARY KEY, email TEXT);"
            "INSERT INTO users VALUES (1, 'a@example.org'), (2, 'b@example.org');",
        ],
        check=True,
    )
    yield unique
    subprocess.run([client, *MARIADB, "-e", f"DROP DATABASE {unique}"], check=True)


def test_real_mariadb_dump_gz(tmp_path: Path, mariadb_db: str) -> None:
    dump = require_tool("mariadb-dump")
    out = subprocess.run([dump, *MARIADB, mariadb_db], check=True, capture_output=True).stdout
    path = write(tmp_path / f"{mariadb_db}_20250501120000.sql.gz", gzip.compress(out))
    assert ok(path).detail == "CRC ok, mariadb-dump completion trailer present"


# --- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def pg_db(unique: str) -> Iterator[str]:
    psql = require_tool("psql")
    subprocess.run([psql, *PG, "-qc", f"CREATE DATABASE {unique}"], check=True)
    try:
        subprocess.run(
            [
                psql,
                *PG,
                "-d",
                unique,
                "-qc",
                "CREATE TABLE customers (id int, name text);"
                "INSERT INTO customers SELECT g, md5(g::text) FROM generate_series(1, 20000) g;",
            ],
            check=True,
        )
        yield unique
    finally:
        subprocess.run([psql, *PG, "-qc", f"DROP DATABASE {unique}"], check=True)


def test_real_pg_dump_custom_format(tmp_path: Path, pg_db: str) -> None:
    pg_dump = require_tool("pg_dump")
    require_tool("pg_restore")
    # Seed 001 names custom-format dumps `.sql`: detection goes by content, not by name.
    path = tmp_path / "20250501_neff.sql"
    subprocess.run([pg_dump, *PG, "-Fc", "-f", str(path), pg_db], check=True)
    verdict = ok(path)
    assert verdict.format == "pgdump"
    assert verdict.detail.startswith("pg_restore read the whole archive")
    truncate(path, 0.6)
    # `pg_restore --list` passes this file; reading every data block does not.
    assert failed(path).startswith("pg_restore failed: ")


def test_pg_dump_header_only_without_pg_restore(tmp_path: Path, pg_db: str) -> None:
    pg_dump = require_tool("pg_dump")
    path = tmp_path / "db.dump"
    subprocess.run([pg_dump, *PG, "-Fc", "-f", str(path), pg_db], check=True)
    verdict = ok(path, pg_restore="/nonexistent/pg_restore")
    assert verdict.detail.endswith("/nonexistent/pg_restore not found")
    assert failed(write(tmp_path / "x.dump", b"PGDMX" + b"\0" * 100), verify="pgdump") == (
        "not a PostgreSQL custom-format dump (no PGDMP header)"
    )


def test_real_pg_dump_plain_gz(tmp_path: Path, pg_db: str) -> None:
    pg_dump = require_tool("pg_dump")
    out = subprocess.run([pg_dump, *PG, pg_db], check=True, capture_output=True).stdout
    path = write(tmp_path / "db-20250501.sql.gz", gzip.compress(out))
    assert ok(path).detail == "CRC ok, pg_dump completion trailer present"
    cut = out[: out.rindex(b"-- PostgreSQL database dump complete")]
    path.write_bytes(gzip.compress(cut))
    assert failed(path) == (
        "pg_dump has no '-- PostgreSQL database dump complete' trailer "
        "(dump incomplete or truncated)"
    )


def test_cancel_stops_a_check(tmp_path: Path) -> None:
    path = write(tmp_path / "big.gz", gzip.compress(os.urandom(3 << 20), compresslevel=1))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        verify_file(str(path), cancel)
