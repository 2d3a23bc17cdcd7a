"""Drill lifecycle: timeouts kill the client's process group, restarts leave no scratch."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from exporter.drills import DrillStore
from exporter.drills.state import Busy
from tests.exporter._drills_helpers import (
    drill,
    mariadb_dump,
    my_config,
    my_databases,
    my_scratch,
    my_source,
    pg_config,
    pg_databases,
    pg_dump,
    pg_scratch,
    pg_source,
    run,
)

__all__ = ["my_scratch", "my_source", "pg_scratch", "pg_source"]  # fixtures


def processes_naming(word: str) -> list[int]:
    """Return pids whose command line holds `word`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                if word.encode() in fh.read():
                    out.append(int(entry))
        except OSError:
            continue
    return out


def test_timeout_kills_the_client_and_removes_scratch(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    dump.write_bytes(dump.read_bytes() + b"SELECT SLEEP(120);\n")
    result = run(drill(my_config(my_scratch, timeout="2s"), tmp_path / "state"), dump)
    assert result.reason == "timed out after 2s: restore killed, scratch removed"
    assert processes_naming(my_scratch) == []
    assert my_scratch not in my_databases()


def test_timeout_kills_pg_restore_too(tmp_path: Path, pg_source: str, pg_scratch: str) -> None:
    dump = pg_dump(pg_source, tmp_path / "db.sql")
    dump.write_bytes(dump.read_bytes() + b"SELECT pg_sleep(120);\n")
    result = run(drill(pg_config(pg_scratch, timeout="2s"), tmp_path / "state"), dump)
    assert result.reason == "timed out after 2s: restore killed, scratch removed"
    assert processes_naming(pg_scratch) == []
    assert pg_scratch not in pg_databases()


def test_cancel_stops_a_running_drill_and_removes_scratch(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    dump.write_bytes(dump.read_bytes() + b"SELECT SLEEP(120);\n")
    cancel = threading.Event()
    d = drill(my_config(my_scratch), tmp_path / "state")
    threading.Timer(1.0, cancel.set).start()
    result = run(d, dump, cancel)
    assert result.reason == "cancelled: the exporter is stopping; restore killed"
    assert my_scratch not in my_databases()


def test_result_survives_in_the_state_dir_and_one_drill_runs_at_a_time(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    state = tmp_path / "state"
    d = drill(my_config(my_scratch), state)
    with d.store.lock(), pytest.raises(Busy, match="another drill is running in this process"):
        run(drill(my_config(my_scratch), state), dump)
    result = run(d, dump)
    loaded = DrillStore(str(state), "db", time.time()).load()
    assert loaded.last == result
    assert loaded.last_success == result.finished
    assert loaded.running is None


def test_recover_removes_scratch_left_by_a_killed_process(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    state = tmp_path / "state"
    d = drill(my_config(my_scratch, keep_on_failure=True, tables={"nope": 1}), state)
    kept = run(d, dump)
    assert kept.kept is not None
    assert d.recover() is None  # kept on purpose: stays
    assert my_scratch in my_databases()
    # Pretend the process died mid-drill: the state says running, the scratch is there.
    loaded = d.store.load()
    loaded.running = {"file": str(dump), "started": time.time(), "pid": 1}
    loaded.last = None
    d.store.save(loaded)
    assert d.recover() == f"root@127.0.0.1:3306/{my_scratch}"
    assert my_scratch not in my_databases()
    last = d.store.load().last
    assert last is not None
    assert last.reason == (
        "interrupted: the process running the drill stopped before it ended;"
        f" scratch root@127.0.0.1:3306/{my_scratch} removed"
    )
