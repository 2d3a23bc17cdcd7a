"""The streaming tar validator against archives written by tarfile and GNU tar."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from exporter.collectors.backups.tar import TarError, TarStream, looks_like_tar
from tests.conftest import require_tool


def archive(fmt: int, members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("dir")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "a"
        tar.addfile(link)
    return buf.getvalue()


MEMBERS = {
    "a": os.urandom(1000),
    "b" * 150: b"long name needs a pax or GNU header",  # longer than the 100-byte name field
    "empty": b"",
    "exact": b"x" * 1024,
}


def validate(data: bytes, chunk: int) -> TarStream:
    stream = TarStream()
    for start in range(0, len(data), chunk):
        stream.feed(data[start : start + chunk])
    stream.finish()
    return stream


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
@pytest.mark.parametrize("chunk", [1, 511, 512, 7919, 1 << 20])
def test_valid_archives(fmt: int, chunk: int) -> None:
    members = MEMBERS if fmt != tarfile.USTAR_FORMAT else {"a": MEMBERS["a"], "exact": b"x" * 1024}
    data = archive(fmt, members)
    assert looks_like_tar(data)
    assert validate(data, chunk).members == len(members) + 2


def test_pax_size_override_is_followed() -> None:
    # A pax `size` record governs the member's data length (how >8 GiB members are written).
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("big")
        info.size = 3000
        info.pax_headers = {"comment": "x" * 600}
        tar.addfile(info, io.BytesIO(b"z" * 3000))
    assert validate(buf.getvalue(), 100).members == 1


@pytest.mark.parametrize("cut", [100, 512, 1500, -1024, -1])
def test_truncated_archives_fail(cut: int) -> None:
    data = archive(tarfile.PAX_FORMAT, MEMBERS)
    with pytest.raises(TarError, match=r"truncated|end-of-archive"):
        validate(data[:cut] if cut > 0 else data[: len(data) + cut - 9216], 4096)


def test_corrupt_header_fails() -> None:
    data = bytearray(archive(tarfile.GNU_FORMAT, MEMBERS))
    data[512 * 3 + 20] ^= 0x01  # a header byte of a later member: checksum no longer matches
    with pytest.raises(TarError, match="checksum mismatch at byte"):
        validate(bytes(data), 4096)


def test_random_data_is_not_tar() -> None:
    assert not looks_like_tar(os.urandom(4096))
    with pytest.raises(TarError, match="checksum mismatch at byte 0"):
        validate(os.urandom(4096), 4096)


def test_gnu_tar_archive(tmp_path: Path) -> None:
    tar = require_tool("tar")
    (tmp_path / "src").mkdir()
    for i in range(20):
        (tmp_path / "src" / f"f{i}.txt").write_bytes(os.urandom(i * 300))
    out = tmp_path / "files.tar"
    subprocess.run([tar, "-cf", str(out), "-C", str(tmp_path), "src"], check=True)
    assert validate(out.read_bytes(), 65536).members == 21
