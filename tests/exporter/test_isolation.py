"""One broken source stays in its own room: a blocking file, a stuck thread, a full budget.

A FIFO at a watched path would block `open()` forever. The exporter never opens a file that
is not a regular one; blocking calls run on a bounded worker budget per collector kind, so
what one kind leaves stuck cannot starve another; and SIGTERM exits within seconds whatever a
worker thread is stuck in.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from tests.exporter._process_helpers import running_exporter

UP = "maintwatch_collector_up"
ERRORS = "maintwatch_collector_errors_total"
LAST = "maintwatch_collector_last_success_timestamp_seconds"


def test_a_fifo_maintenance_flag_starves_nothing_and_sigterm_exits(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "storage" / "framework").mkdir(parents=True)
    flag = app / "storage" / "framework" / "down"
    os.mkfifo(flag)  # nobody ever writes: an open() for reading would wait forever
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "db_1.sql.gz").write_bytes(gzip.compress(b"-- dump\n"))
    config = (
        f"apps: [{{name: portal, path: {app}, interval: 100ms, timeout: 300ms}}]\n"
        f"backups: [{{name: db, directory: {backups}, verify: none, interval: 100ms, "
        "timeout: 1s}]\n"
    )
    with running_exporter(tmp_path, config) as exporter:
        apps = {"collector": "apps", "name": "portal"}
        sets = {"collector": "backups", "name": "db"}
        # Twenty failed refreshes: more than asyncio's default pool has threads (min(32,
        # CPUs + 4)), which a stuck open() per refresh used to fill.
        text = exporter.until(lambda t: (exporter.value(t, ERRORS, **apps) or 0) >= 20)
        assert exporter.value(text, UP, **apps) == 0
        # Later scrapes too: the backup set kept refreshing beside the broken app.
        before = exporter.value(text, LAST, **sets)
        text = exporter.until(lambda t: exporter.value(t, LAST, **sets) != before)
        assert exporter.value(text, UP, **sets) == 1
        assert exporter.value(text, ERRORS, **sets) == 0
        seconds = exporter.stop()
        assert seconds is not None, "the exporter did not exit within 20 s of SIGTERM"
        assert exporter.proc.returncode == 0
    failed = [e for e in exporter.events() if e["event"] == "collector_refresh_failed"]
    assert [(e["name"], e["reason"]) for e in failed] == [
        ("portal", f"maintenance file {flag} is not a regular file")
    ]


def test_threads_stuck_for_good_hold_their_kind_only_and_sigterm_exits(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    (backups / "db_1.sql.gz").write_bytes(gzip.compress(b"-- dump\n"))
    # Six instances whose blocking call never returns: more than a kind's thread budget.
    stuck = ", ".join(f"{{name: s{i}, interval: 100ms, timeout: 200ms}}" for i in range(6))
    config = (
        f"stuck: [{stuck}]\n"
        f"backups: [{{name: db, directory: {backups}, verify: none, interval: 100ms, "
        "timeout: 1s}]\n"
    )
    with running_exporter(tmp_path, config, "tests.exporter._stuck_exporter") as exporter:
        sets = {"collector": "backups", "name": "db"}
        text = exporter.until(
            lambda t: all(
                (exporter.value(t, ERRORS, collector="stuck", name=f"s{i}") or 0) >= 5
                for i in range(6)
            )
        )
        before = exporter.value(text, LAST, **sets)
        text = exporter.until(lambda t: exporter.value(t, LAST, **sets) != before)
        assert exporter.value(text, UP, **sets) == 1
        assert exporter.value(text, ERRORS, **sets) == 0
        # Bounded: four stuck workers for six stuck instances, not one more per refresh.
        assert exporter.status("Threads") < 20
        seconds = exporter.stop()
        assert seconds is not None, "the exporter did not exit within 20 s of SIGTERM"
        assert exporter.proc.returncode == 0
    events = [e["event"] for e in exporter.events()]
    assert "exporter_stopped" in events
