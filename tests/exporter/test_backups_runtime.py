"""Backup sets through the real Runtime and the real exporter process: failures and live changes."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
import structlog
from aiohttp import ClientSession
from structlog.testing import capture_logs

from exporter.collectors.base import Context
from exporter.runtime import Runtime
from tests.conftest import free_port, require_tool
from tests.exporter._backups_helpers import make_collector, mysqldump_text, until, write_gzip
from tests.exporter.conftest import Samples


@pytest.fixture
async def runtime() -> AsyncIterator[Runtime]:
    rt = Runtime(structlog.get_logger("test"))
    yield rt
    await rt.close()


def state(rt: Runtime) -> tuple[bool, str]:
    (only,) = rt.states()
    return only.up, only.last_error


def missing(tmp_path: Path) -> Path:
    return tmp_path / "missing"


def a_file(tmp_path: Path) -> Path:
    (tmp_path / "file").write_text("x")
    return tmp_path / "file"


@pytest.mark.parametrize(
    ("make", "reason"),
    [(missing, "directory {} does not exist"), (a_file, "{} is not a directory")],
)
async def test_bad_directory_marks_set_down(
    tmp_path: Path,
    context: Context,
    runtime: Runtime,
    make: Callable[[Path], Path],
    reason: str,
) -> None:
    directory = make(tmp_path)
    with capture_logs() as logs:
        collector = make_collector(context, name="db", directory=str(directory), retention="30d")
        await runtime.apply([(collector, 30.0, 5.0)])
        await asyncio.wait_for(runtime.wait_ready(), 10)
    assert state(runtime) == (False, reason.format(directory))
    failures = [e for e in logs if e["event"] == "collector_refresh_failed"]
    assert [(e["name"], e["reason"]) for e in failures] == [("db", reason.format(directory))]
    samples = Samples(runtime.families())
    assert samples.get("maintwatch_collector_up", collector="backups", name="db") == 0
    # Configured expectations stay; measured values are not served stale.
    assert samples.get("maintwatch_backup_max_age_seconds", backup="db") == 26 * 3600
    assert samples.get("maintwatch_backup_retention_seconds", backup="db") == 30 * 86400
    assert samples.all("maintwatch_backup_files") == []
    assert samples.all("maintwatch_backup_volume_free_bytes") == []


async def test_files_appearing_while_running(
    tmp_path: Path, context: Context, runtime: Runtime
) -> None:
    backups = tmp_path / "database"
    collector = make_collector(
        context, name="tongacp", directory=str(backups), timestamp="tongacp_db_%Y%m%d%H%M%S.sql.gz"
    )
    await runtime.apply([(collector, 0.05, 5.0)])
    await asyncio.wait_for(runtime.wait_ready(), 10)
    assert state(runtime)[0] is False  # the directory is not there yet

    def files() -> float | None:
        return Samples(runtime.families()).get("maintwatch_backup_files", backup="tongacp")

    async def files_equal(n: int) -> bool:
        async def probe() -> bool | None:
            return True if files() == n else None

        return await until(probe, timeout=20)

    backups.mkdir()
    await files_equal(0)
    assert state(runtime) == (True, "")
    write_gzip(backups / "tongacp_db_20250501020000.sql.gz", mysqldump_text(200))
    await files_equal(1)
    write_gzip(backups / "tongacp_db_20250502020000.sql.gz", mysqldump_text(300))
    write_gzip(backups / "not_a_backup.gz", b"x")
    await files_equal(2)

    async def verified_newest() -> float | None:
        samples = Samples(runtime.families())
        return samples.get("maintwatch_backup_last_verify_success", backup="tongacp")

    assert await until(verified_newest, timeout=20) == 1
    (backups / "tongacp_db_20250501020000.sql.gz").unlink()  # rotation
    await files_equal(1)


async def test_reload_keeps_a_running_set(
    tmp_path: Path, context: Context, runtime: Runtime
) -> None:
    write_gzip(tmp_path / "db.sql.gz", mysqldump_text(100))
    first = make_collector(context, directory=str(tmp_path))
    await runtime.apply([(first, 30.0, 5.0)])
    await asyncio.wait_for(runtime.wait_ready(), 10)
    # The same config again (SIGHUP): the instance, its cache and its verifier survive.
    await runtime.apply([(make_collector(context, directory=str(tmp_path)), 30.0, 5.0)])
    assert runtime.states()[0].collector is first


def _drop_dac(argv: list[str]) -> list[str]:
    # Tests run as root, and root reads a chmod 000 directory anyway. Dropping the two
    # capabilities that bypass file permissions from the bounding set gives the exporter a
    # real EACCES on it, like an exporter running as its own unprivileged user would get.
    if os.geteuid() != 0:
        return argv
    setpriv = require_tool("setpriv")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *argv]


async def scrape_until(url: str, needles: Sequence[str], proc: subprocess.Popen[bytes]) -> str:
    """Scrape until every needle is in the text (each set refreshes on its own schedule)."""
    async with ClientSession() as session:

        async def probe() -> str | None:
            assert proc.poll() is None, "exporter exited"
            try:
                async with session.get(url) as resp:
                    text = await resp.text()
            except OSError:
                return None
            return text if all(needle in text for needle in needles) else None

        return await until(probe, timeout=30, every=0.1)


async def test_unreadable_directory_in_real_exporter(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    write_gzip(locked / "db.sql.gz", mysqldump_text(10))
    locked.chmod(0)
    config = tmp_path / "exporter.yml"
    config.write_text(
        f"backups:\n  - {{name: locked, directory: {locked}, max_age: 26h}}\n"
        f"  - {{name: open, directory: {tmp_path}, glob: '*.yml'}}\n"
    )
    port = free_port()
    log = tmp_path / "exporter.log"
    argv = [sys.executable, "-m", "exporter", "--config.file", str(config)]
    argv += ["--web.listen-address", f"127.0.0.1:{port}", "--log.format", "json"]
    with log.open("wb") as out:
        proc = subprocess.Popen(_drop_dac(argv), stdout=out, stderr=subprocess.STDOUT)
    try:
        text = await scrape_until(
            f"http://127.0.0.1:{port}/metrics",
            [
                'maintwatch_collector_up{collector="backups",name="locked"} 0.0',
                'maintwatch_collector_up{collector="backups",name="open"} 1.0',
            ],
            proc,
        )
        assert 'maintwatch_backup_files{backup="open"} 1.0' in text
        assert 'maintwatch_backup_max_age_seconds{backup="locked"} 93600.0' in text
        assert 'maintwatch_backup_files{backup="locked"}' not in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        locked.chmod(0o755)
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "collector_refresh_failed"]
    assert [(e["name"], e["reason"]) for e in failed] == [
        ("locked", f"cannot read directory {locked}: permission denied")
    ]


def test_setpriv_really_denies(tmp_path: Path) -> None:
    # Guards the test above: without the dropped capabilities it would prove nothing as root.
    locked = tmp_path / "locked"
    locked.mkdir(mode=0)
    probe = [sys.executable, "-c", f"import os; os.listdir({str(locked)!r})"]
    result = subprocess.run(_drop_dac(probe), capture_output=True, text=True, check=False)
    shutil.rmtree(locked)
    assert result.returncode == 1
    assert "PermissionError" in result.stderr


def test_unreadable_backup_file_fails_its_check(tmp_path: Path) -> None:
    path = write_gzip(tmp_path / "db.sql.gz", mysqldump_text(10))
    path.chmod(0)
    code = (
        "import sys, threading; from exporter.collectors.backups.verify import verify_file; "
        "print(verify_file(sys.argv[1], threading.Event()))"
    )
    argv = _drop_dac([sys.executable, "-c", code, str(path)])
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == (
        "Verdict(ok=False, format='unreadable', detail='cannot open: Permission denied')"
    )
