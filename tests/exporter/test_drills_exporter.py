"""Drills in the real exporter process: on demand from the CLI, on schedule, across restarts."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import free_port
from tests.exporter._drills_helpers import mariadb_dump, my_databases, my_scratch, my_source
from tests.exporter.test_cli import wait_http
from tests.exporter.test_drills_lifecycle import processes_naming

__all__ = ["my_scratch", "my_source"]  # fixtures

EXPORTER = [sys.executable, "-m", "exporter"]


def write_config(root: Path, live: str, scratch: str, tables: str = "{users: 100}") -> Path:
    """Write an exporter config with one MariaDB set and its drill."""
    (root / "backups").mkdir(exist_ok=True)
    config = root / "exporter.yml"
    config.write_text(
        f"""
state_dir: {root / "state"}
backups:
  - name: shop_db
    directory: {root / "backups"}
    glob: "*.sql.gz"
    settle: 0s
    interval: 1s
    restore:
      engine: mariadb
      scratch: {{dsn: "mysql://root@127.0.0.1:3306/{scratch}"}}
      live: {{dsn: "mysql://root@127.0.0.1:3306/{live}"}}
      every: 7d
      tables: {tables}
"""
    )
    return config


def drill_cli(config: Path, name: str = "shop_db") -> subprocess.CompletedProcess[str]:
    """Run `maintwatch-exporter drill <name>`."""
    argv = [*EXPORTER, "drill", name, "--config.file", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)


@contextmanager
def exporter(config: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run the exporter; yield its /metrics URL and process."""
    port = free_port()
    argv = [*EXPORTER, "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"]
    with open(log, "ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}/metrics", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def metric_line(url: str, prefix: str, deadline: float) -> str:
    """Wait for a /metrics line starting with `prefix`; return it."""
    while True:
        for line in wait_http(url, deadline).splitlines():
            if line.startswith(prefix):
                return line
        assert time.monotonic() < deadline, f"{prefix} never appeared"
        time.sleep(0.2)


def test_cli_drill_prints_progress_result_and_exit_code(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    config = write_config(tmp_path, my_source, my_scratch)
    mariadb_dump(my_source, tmp_path / "backups" / "shop_20260101.sql.gz", compress=True)
    passed = drill_cli(config)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "checking the integrity of" in passed.stdout
    assert f"creating scratch root@127.0.0.1:3306/{my_scratch}" in passed.stdout
    assert "ok   table:users: 120 rows" in passed.stdout
    assert "drill PASSED" in passed.stdout
    assert f"recorded in {tmp_path / 'state' / 'drills' / 'shop_db.json'}" in passed.stdout
    # The exporter serves the result the command line recorded (not due again for 7 days).
    with exporter(config, tmp_path / "exporter.log") as (url, _):
        deadline = time.monotonic() + 60
        line = metric_line(url, 'maintwatch_backup_drill_success{backup="shop_db"}', deadline)
        assert line.endswith(" 1.0")
        rows = metric_line(url, "maintwatch_backup_drill_table_rows{", deadline)
        assert rows == 'maintwatch_backup_drill_table_rows{backup="shop_db",table="users"} 120.0'
    failing = drill_cli(write_config(tmp_path, my_source, my_scratch, "{users: 1, nope: 1}"))
    assert failing.returncode == 1
    assert "FAIL table:nope: table nope is missing" in failing.stdout
    assert "reason: table nope is missing" in failing.stdout
    unknown = drill_cli(config, "other")
    assert unknown.returncode == 2
    assert "other: no backup set of that name has a `restore:` drill" in unknown.stderr


def test_scheduled_drill_and_a_restart_mid_drill_leave_no_scratch(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    config = write_config(tmp_path, my_source, my_scratch)
    dump = mariadb_dump(my_source, tmp_path / "backups" / "shop_20260101.sql")
    # A dump that passes its integrity check but whose restore takes a while.
    slow = dump.read_bytes().replace(b"-- Dump completed", b"SELECT SLEEP(30);\n-- Dump completed")
    dump.unlink()
    (tmp_path / "backups" / "shop_20260101.sql.gz").write_bytes(gzip.compress(slow))
    log = tmp_path / "exporter.log"
    try:
        with exporter(config, log) as (url, proc):
            deadline = time.monotonic() + 60
            metric_line(url, 'maintwatch_backup_drill_running{backup="shop_db"} 1.0', deadline)
            while my_scratch not in my_databases():
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            proc.kill()  # SIGKILL mid-drill: nothing gets to clean up
            proc.wait()
        assert my_scratch in my_databases()
        with exporter(config, log) as (url, _):
            deadline = time.monotonic() + 60
            line = metric_line(url, 'maintwatch_backup_drill_success{backup="shop_db"}', deadline)
            assert line.endswith(" 0.0")
            assert my_scratch not in my_databases()
        assert "backup_drill_scratch_removed" in log.read_text()
    finally:
        for pid in processes_naming(my_scratch):  # the orphaned client of the killed exporter
            os.kill(pid, signal.SIGKILL)


def test_cli_reports_a_file_that_failed_its_integrity_check_without_restoring_it(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    config = write_config(tmp_path, my_source, my_scratch)
    dump = mariadb_dump(my_source, tmp_path / "backups" / "shop_20260101.sql.gz", compress=True)
    dump.write_bytes(dump.read_bytes()[:-40])
    done = drill_cli(config)
    assert done.returncode == 1
    assert "reason: newest file shop_20260101.sql.gz failed its integrity check (gzip" in (
        done.stdout
    )
    assert "reported, not restored" in done.stdout
    assert "creating scratch" not in done.stdout
    assert my_scratch not in my_databases()


def test_cli_refuses_a_scratch_named_by_a_watched_database(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    config = write_config(tmp_path, my_source, my_scratch)
    dsn = f"mysql://root@127.0.0.1/{my_scratch}"
    watched = f'databases:\n  - {{name: shop, driver: mysql, dsn: "{dsn}"}}\n'
    config.write_text(config.read_text() + watched)
    mariadb_dump(my_source, tmp_path / "backups" / "shop_20260101.sql.gz", compress=True)
    done = drill_cli(config)
    assert done.returncode == 1
    assert f"reason: refused: scratch database {my_scratch} is named as a live database" in (
        done.stdout
    )
    assert my_scratch not in my_databases()
