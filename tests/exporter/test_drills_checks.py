"""Pure parts of restore drills: checks, schedule, metric families, the recorded state."""

from __future__ import annotations

from pathlib import Path

from exporter.drills.checks import live_checks, table_checks, tarball_checks
from exporter.drills.metrics import state_families, static_families
from exporter.drills.model import Check, DrillResult
from exporter.drills.schedule import due
from exporter.drills.state import DrillState, DrillStore
from exporter.drills.stream import PipeOutcome
from exporter.metrics import MetricSet
from tests.exporter._drills_helpers import restore_config
from tests.exporter.conftest import Samples

RESULT = DrillResult(
    ok=False,
    reason="table orders is missing",
    file="/b/db.sql.gz",
    started=100.0,
    finished=160.0,
    duration=55.5,
    restored_bytes=4096,
    rows={"users": 120},
    checks=(Check("restore", True, "4096 bytes"), Check("table:orders", False, "missing")),
)


def test_table_checks_report_missing_and_small_tables() -> None:
    checks = table_checks({"users": 100, "orders": 50, "gone": 0}, {"users": 120, "orders": 3})
    assert [(c.name, c.ok) for c in checks] == [
        ("table:users", True), ("table:orders", False), ("table:gone", False),
    ]  # fmt: skip
    assert checks[1].detail == "table orders has 3 rows, fewer than the 50 required"


def test_live_checks_allow_the_tolerance_and_no_more() -> None:
    ok, drift = live_checks({"a": 95, "b": 94}, {"a": 100, "b": 100}, 0.05)
    assert ok.ok
    assert not drift.ok
    assert drift.detail == "table b: 94 rows restored, 100 live (more than 5% apart)"


def test_tarball_checks_compare_with_the_previous_drill_only_when_there_is_one() -> None:
    first = tarball_checks({"a": True}, 10, 1000, None, 0.2)
    assert all(c.ok for c in first)
    later = tarball_checks({"a": False}, 7, 1000, (10, 1000), 0.2)
    assert [(c.name, c.ok) for c in later] == [("path:a", False), ("files", False), ("size", True)]


def test_a_drill_is_due_when_never_run_or_every_has_passed() -> None:
    state = DrillState(since=0.0)
    assert due(50.0, state, 100.0)
    state.last = RESULT
    assert not due(259.0, state, 100.0)
    assert due(260.0, state, 100.0)


def test_families_from_the_recorded_state() -> None:
    ms = MetricSet({"backup": "db"})
    static_families(ms, restore_config(engine="tarball", directory="/x", every="7d", rto="2h"))
    state_families(ms, DrillState(since=10.0, last=RESULT, last_success=None), running=False)
    got = Samples(ms.families())
    assert got.get("maintwatch_backup_drill_every_seconds") == 7 * 86400
    assert got.get("maintwatch_backup_drill_rto_seconds") == 7200
    assert got.get("maintwatch_backup_drill_success") == 0
    assert got.get("maintwatch_backup_drill_last_success_timestamp_seconds") == 10.0
    assert got.get("maintwatch_backup_drill_duration_seconds") == 55.5
    assert got.get("maintwatch_backup_drill_table_rows", table="users") == 120
    assert got.get("maintwatch_backup_drill_check_success", check="table:orders") == 0
    assert got.get("maintwatch_backup_drill_files") is None


def test_state_round_trips_through_its_file(tmp_path: Path) -> None:
    store = DrillStore(str(tmp_path), "db", 5.0)
    state = store.load()
    assert state.since == 5.0
    state.last, state.previous = RESULT, (3, 300)
    store.save(state)
    again = DrillStore(str(tmp_path), "db", 99.0).load()
    assert (again.since, again.last, again.previous) == (5.0, RESULT, (3, 300))


def test_client_error_is_the_line_naming_the_error() -> None:
    outcome = PipeOutcome(1, ("some notice", "ERROR 1064 (42000) at line 7: syntax", "bye"), 10)
    assert outcome.client_error() == "ERROR 1064 (42000) at line 7: syntax"
