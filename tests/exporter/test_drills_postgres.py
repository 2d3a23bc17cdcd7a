"""Restore drills against the real PostgreSQL server, with dumps from the real pg_dump."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exporter._db_helpers import pg_admin
from tests.exporter._drills_helpers import (
    drill,
    pg_config,
    pg_databases,
    pg_dump,
    pg_scratch,
    pg_source,
    run,
    truncate_at,
)

__all__ = ["pg_scratch", "pg_source"]  # fixtures


@pytest.mark.parametrize(
    ("fmt", "compress"), [("plain", False), ("plain", True), ("custom", False), ("custom", True)]
)
def test_good_dump_restores_in_every_format(
    tmp_path: Path, pg_source: str, pg_scratch: str, fmt: str, compress: bool
) -> None:
    dump = pg_dump(pg_source, tmp_path / "db.dump", fmt, compress)
    result = run(drill(pg_config(pg_scratch, pg_source), tmp_path / "state"), dump)
    assert result.ok, result.reason
    assert result.rows == {"users": 120, "orders": 30}
    assert all(c.ok for c in result.checks)
    assert pg_scratch not in pg_databases()


def test_truncated_plain_dump_fails_with_psqls_own_error_line(
    tmp_path: Path, pg_source: str, pg_scratch: str
) -> None:
    dump = pg_dump(pg_source, tmp_path / "db.sql")
    truncate_at(dump, b"CREATE TABLE public.orders")
    result = run(drill(pg_config(pg_scratch), tmp_path / "state"), dump)
    assert not result.ok
    assert result.reason.startswith("restore client exited with status 3: psql:<stdin>:")
    assert "ERROR:  syntax error" in result.reason
    assert pg_scratch not in pg_databases()


def test_truncated_custom_dump_fails_with_pg_restores_own_error_line(
    tmp_path: Path, pg_source: str, pg_scratch: str
) -> None:
    dump = pg_dump(pg_source, tmp_path / "db.dump", "custom")
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 2 // 3])
    result = run(drill(pg_config(pg_scratch), tmp_path / "state"), dump)
    assert not result.ok
    assert "restore client exited with status 1: pg_restore: error:" in result.reason
    assert pg_scratch not in pg_databases()


def test_dump_without_a_required_table_fails_its_check(
    tmp_path: Path, pg_source: str, pg_scratch: str
) -> None:
    with pg_admin(pg_source) as conn:
        conn.execute("DROP TABLE orders")
    dump = pg_dump(pg_source, tmp_path / "db.dump", "custom")
    result = run(drill(pg_config(pg_scratch), tmp_path / "state"), dump)
    assert not result.ok
    assert result.reason == "table orders is missing"
    assert result.rows == {"users": 120}
    assert pg_scratch not in pg_databases()


def test_live_drift_beyond_tolerance_fails(tmp_path: Path, pg_source: str, pg_scratch: str) -> None:
    dump = pg_dump(pg_source, tmp_path / "db.dump", "custom")
    with pg_admin(pg_source) as conn:
        conn.execute("DELETE FROM orders WHERE id >= 20")
    result = run(drill(pg_config(pg_scratch, pg_source, tolerance=0.1), tmp_path / "state"), dump)
    assert not result.ok
    assert result.reason == "table orders: 30 rows restored, 20 live (more than 10% apart)"


def test_refuses_a_database_it_did_not_create(
    tmp_path: Path, pg_source: str, pg_scratch: str
) -> None:
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{pg_scratch}"')
    dump = pg_dump(pg_source, tmp_path / "db.dump", "custom")
    result = run(drill(pg_config(pg_scratch), tmp_path / "state"), dump)
    assert result.reason == (
        f"refused: database {pg_scratch} exists on 127.0.0.1:5432 without the drill's marker"
        " comment: the drill did not create it and will not restore over it"
    )
    assert pg_scratch in pg_databases()


def test_dump_made_with_create_is_refused(tmp_path: Path, pg_source: str, pg_scratch: str) -> None:
    import subprocess

    data = subprocess.run(
        ["pg_dump", "-h127.0.0.1", "-Upostgres", "--create", pg_source],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    (tmp_path / "c.sql").write_bytes(data)
    result = run(drill(pg_config(pg_scratch), tmp_path / "state"), tmp_path / "c.sql")
    assert not result.ok
    assert "made without --create only" in result.reason
    assert pg_scratch not in pg_databases()


def test_a_dump_that_runs_a_shell_command_is_stopped_before_it(
    tmp_path: Path, pg_source: str, pg_scratch: str
) -> None:
    dump = pg_dump(pg_source, tmp_path / "db.sql")
    proof = tmp_path / "ran"
    dump.write_bytes(f"\\! touch {proof}\n".encode() + dump.read_bytes())
    result = run(drill(pg_config(pg_scratch), tmp_path / "state"), dump)
    assert "the dump holds '\\\\!'" in result.reason
    assert not proof.exists()
    assert pg_scratch not in pg_databases()
