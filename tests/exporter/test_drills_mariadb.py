"""Restore drills against the real MariaDB server, with dumps from the real mariadb-dump."""

from __future__ import annotations

from pathlib import Path

from tests.exporter._drills_helpers import (
    drill,
    mariadb_dump,
    my_config,
    my_databases,
    my_exec,
    my_scratch,
    my_source,
    my_users,
    run,
    truncate_at,
)

__all__ = ["my_scratch", "my_source"]  # fixtures


def test_good_gzip_dump_restores_counts_rows_and_drops_scratch(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql.gz", compress=True)
    result = run(drill(my_config(my_scratch, my_source), tmp_path / "state"), dump)
    assert result.ok, result.reason
    assert result.rows == {"users": 120, "orders": 30}
    assert {c.name for c in result.checks} == {
        "restore", "table:users", "table:orders", "live:users", "live:orders",
    }  # fmt: skip
    assert result.restored_bytes > 0
    assert my_scratch not in my_databases()


def test_truncated_dump_fails_with_the_clients_own_error_line(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    truncate_at(dump, b"INSERT INTO `users`")
    result = run(drill(my_config(my_scratch), tmp_path / "state"), dump)
    assert not result.ok
    assert "restore client exited with status 1: ERROR 1064" in result.reason
    assert "at line" in result.reason
    assert my_scratch not in my_databases()


def test_missing_table_fails_its_check_and_scratch_is_kept_when_asked(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    my_exec(["DROP TABLE orders"], my_source)
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    result = run(drill(my_config(my_scratch, keep_on_failure=True), tmp_path / "state"), dump)
    assert not result.ok
    assert result.reason == "table orders is missing"
    assert result.kept is not None
    assert my_scratch in my_databases()
    # The next drill recognises its own kept scratch and replaces it.
    my_exec(["CREATE TABLE orders (id INT)", "INSERT INTO orders VALUES (1)"], my_source)
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    assert run(drill(my_config(my_scratch), tmp_path / "state"), dump).ok


def test_live_drift_beyond_tolerance_fails(tmp_path: Path, my_source: str, my_scratch: str) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    my_users(my_source, range(1000, 1040))
    result = run(drill(my_config(my_scratch, my_source), tmp_path / "state"), dump)
    assert not result.ok
    assert "table users: 120 rows restored, 160 live (more than 5% apart)" in result.reason
    assert result.rows["users"] == 120


def test_refuses_a_database_it_did_not_create(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    my_exec([f"CREATE DATABASE `{my_scratch}`", f"CREATE TABLE `{my_scratch}`.keep (x INT)"])
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    result = run(drill(my_config(my_scratch), tmp_path / "state"), dump)
    assert not result.ok
    assert result.reason.startswith(f"refused: database {my_scratch} exists on 127.0.0.1:3306")
    assert "without the drill's marker table" in result.reason
    tables = my_exec_tables(my_scratch)
    assert tables == {"keep"}


def test_refuses_a_scratch_named_as_a_live_database(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    d = drill(my_config(my_scratch), tmp_path / "state", frozenset({my_scratch}))
    result = run(d, dump)
    assert result.reason == (
        f"refused: scratch database {my_scratch} is named as a live database in the config;"
        " a drill restores only into a database of its own"
    )
    assert my_scratch not in my_databases()


def test_dump_of_several_databases_is_refused_mid_stream(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    import subprocess

    data = subprocess.run(
        ["mariadb-dump", "-h127.0.0.1", "-uroot", "--databases", my_source],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    (tmp_path / "all.sql").write_bytes(data)
    result = run(drill(my_config(my_scratch), tmp_path / "state"), tmp_path / "all.sql")
    assert not result.ok
    assert "a drill restores single-database dumps only" in result.reason
    assert my_scratch not in my_databases()


def my_exec_tables(database: str) -> set[str]:
    """Return the tables of a database."""
    from tests.exporter._db_helpers import my_admin

    conn = my_admin(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def test_a_dump_that_runs_a_shell_command_is_stopped_before_it(
    tmp_path: Path, my_source: str, my_scratch: str
) -> None:
    dump = mariadb_dump(my_source, tmp_path / "db.sql")
    proof = tmp_path / "ran"
    dump.write_bytes(dump.read_bytes() + f"\\! touch {proof}\n".encode())
    result = run(drill(my_config(my_scratch), tmp_path / "state"), dump)
    assert "the dump holds '\\\\!'" in result.reason
    assert not proof.exists()
    assert my_scratch not in my_databases()
