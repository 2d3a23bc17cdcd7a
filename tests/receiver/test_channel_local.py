"""Console and file channels: readable text on a stream, JSON lines on disk, disk errors."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest

from receiver.delivery.channels.base import DeliveryError
from receiver.delivery.channels.console import ConsoleChannel, ConsoleConfig
from receiver.delivery.channels.file import FileChannel, FileConfig, append_line
from tests.receiver._channel_helpers import HOSTILE, make_context, make_notification


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return the shared client session (unused by these channels, required by the context)."""
    async with aiohttp.ClientSession() as session:
        yield session


async def test_console_writes_a_block(
    http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    n = make_notification(
        2, common_labels={"alertname": "BackupTooOld", "severity": "critical", "team": HOSTILE}
    )
    channel = ConsoleChannel(ConsoleConfig(name="demo", type="console"), make_context(http))
    await channel.send(n)
    out = capsys.readouterr().out
    assert out.startswith("[FIRING] critical BackupTooOld (2 alerts): Backup db0 is 30h old\n")
    assert f"labels: team={HOSTILE}\n" in out
    assert "  ack: https://pager.example/ack/tok12\n" in out
    assert out.endswith("\n\n")


async def test_console_stderr(
    http: aiohttp.ClientSession, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = ConsoleConfig(name="demo", type="console", stream="stderr")
    await ConsoleChannel(cfg, make_context(http)).send(make_notification(kind="resolved"))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("[RESOLVED] critical BackupTooOld")


async def test_file_appends_json_lines(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    path = tmp_path / "pages.jsonl"
    path.write_text('{"earlier": true}\n')
    channel = FileChannel(FileConfig(name="f", type="file", path=str(path)), make_context(http))
    await channel.send(make_notification(common_annotations={"summary": HOSTILE}))
    await channel.send(make_notification(id="out-43", kind="resolved"))
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    first, second = json.loads(lines[1]), json.loads(lines[2])
    assert first["id"] == "out-42"
    assert first["common_annotations"]["summary"] == HOSTILE
    assert "Ünïcødé ✓" in lines[1]  # written as UTF-8, not \u-escaped
    assert first["text"].startswith("[FIRING] critical BackupTooOld")
    assert (second["id"], second["kind"]) == ("out-43", "resolved")


async def test_file_keeps_a_torn_line_from_a_crash_apart(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    path = tmp_path / "pages.jsonl"
    path.write_bytes(b'{"id": "out-41", "kind": "fir')  # a write a SIGKILL cut short
    channel = FileChannel(FileConfig(name="f", type="file", path=str(path)), make_context(http))
    await channel.send(make_notification())
    torn, whole = path.read_bytes().split(b"\n")[:2]
    assert torn == b'{"id": "out-41", "kind": "fir'
    assert json.loads(whole)["id"] == "out-42"
    assert path.read_bytes().endswith(b"\n")


def test_concurrent_appends_never_leave_a_blank_line(tmp_path: Path) -> None:
    # Found by the 30-minute soak: without a lock, a writer that looked at the file while
    # another's line was half written saw no final newline and added one of its own.
    path = tmp_path / "pages.jsonl"
    record = json.dumps({"id": "x", "text": "y" * 9000}).encode() + b"\n"  # spans pages
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: append_line(str(path), record, 0o640), range(400)))
    lines = path.read_bytes().split(b"\n")
    assert lines.pop() == b""  # the file ends with a newline
    assert len(lines) == 400
    assert all(line == record[:-1] for line in lines)


async def test_file_is_created_with_configured_mode(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    path = tmp_path / "new.jsonl"
    cfg = FileConfig(name="f", type="file", path=str(path), mode=0o600)
    await FileChannel(cfg, make_context(http)).send(make_notification())
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{tmp}", "Is a directory"),
        ("/proc/version", "cannot append to /proc/version"),
        ("{tmp}/missing/dir/pages.jsonl", "No such file or directory"),
    ],
)
async def test_unwritable_paths_are_permanent_delivery_errors(
    http: aiohttp.ClientSession, tmp_path: Path, target: str, message: str
) -> None:
    path = target.format(tmp=tmp_path)
    channel = FileChannel(FileConfig(name="f", type="file", path=path), make_context(http))
    with pytest.raises(DeliveryError, match=message) as caught:
        await channel.send(make_notification())
    assert caught.value.retryable is False
    assert path in caught.value.reason


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
async def test_full_disk_is_retryable(http: aiohttp.ClientSession) -> None:
    # /dev/full answers every write with ENOSPC, exactly like a full filesystem.
    channel = FileChannel(FileConfig(name="f", type="file", path="/dev/full"), make_context(http))
    with pytest.raises(DeliveryError, match="No space left on device") as caught:
        await channel.send(make_notification())
    assert caught.value.retryable is True
