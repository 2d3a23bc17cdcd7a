"""The storage scripts written once: batches with an inbox mark, old databases, one SQL style."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from receiver.config import PostgresStore, SqliteStore
from receiver.intake.payload import Payload, parse_payload
from receiver.store import IngestResult, IntakeRules, Store, groups, make_store
from receiver.store.dialect import POSTGRES, SQLITE
from receiver.store.postgres import statement
from receiver.store.tx import Tx
from tests.receiver._helpers import (
    T0,
    RecordingTx,
    alert,
    opened_store,
    payload,
    postgres_database,
    rules_for,
)

ROOT = Path(__file__).resolve().parents[2]
OLD_MIGRATIONS = ROOT / "tests" / "fixtures" / "migrations_v5"


@pytest.fixture
def rules(tmp_path: Path) -> IntakeRules:
    """Return intake rules of a config without channels (intake only)."""
    return rules_for(f"store: {{type: sqlite, path: {tmp_path / 'receiver.db'}}}\n")


def parsed(group: str, fp: str = "a", status: str = "firing") -> Payload:
    """Return a one-alert payload for `group`."""
    return parse_payload(json.dumps(payload(alert(fp, status), group=group)).encode())


async def test_a_batch_applies_in_order_and_saves_the_mark(
    store: Store, rules: IntakeRules
) -> None:
    assert await store.inbox_mark("inbox-1") == 0
    items = [(parsed("g"), T0), (parsed("g", status="resolved"), T0 + 1), (parsed("h"), T0 + 2)]
    results = await store.ingest_batch(items, rules, ("inbox-1", 3))
    assert [r.action for r in results if isinstance(r, IngestResult)] == [
        "open",
        "resolve",
        "open",
    ]
    assert await store.inbox_mark("inbox-1") == 3
    assert await store.inbox_mark("inbox-2") == 0
    await store.ingest_batch([(parsed("g"), T0 + 3)], rules, ("inbox-1", 4))
    assert await store.inbox_mark("inbox-1") == 4


async def test_a_failing_payload_in_the_middle_fails_alone(
    store: Store, rules: IntakeRules
) -> None:
    # An integer neither database can store in the column.
    bad = parsed("bad").model_copy(update={"truncatedAlerts": 2**70})
    results = await store.ingest_batch(
        [(parsed("one"), T0), (bad, T0), (parsed("two"), T0)], rules, ("inbox", 7)
    )
    assert isinstance(results[1], Exception)
    assert [r.action for r in (results[0], results[2]) if isinstance(r, IngestResult)] == [
        "open",
        "open",
    ]
    assert await store.inbox_mark("inbox") == 7
    stored = await store.incidents(None, {}, 10)
    assert sorted(i.group_key for i in stored) == ["one", "two"]


async def test_a_duplicate_changes_nothing_in_a_batch(store: Store, rules: IntakeRules) -> None:
    results = await store.ingest_batch([(parsed("same"), T0)] * 3, rules)
    assert [r.action for r in results if isinstance(r, IngestResult)] == ["open", "none", "none"]


async def test_ingest_keeps_per_group_order_across_groups(store: Store, rules: IntakeRules) -> None:
    # Locking groups in key order must not reorder one group's payloads.
    items = [
        (parsed("z"), T0),
        (parsed("a"), T0),
        (parsed("z", status="resolved"), T0 + 1),
        (parsed("a", status="resolved"), T0 + 1),
    ]
    results = await store.ingest_batch(items, rules)
    actions = [r.action for r in results if isinstance(r, IngestResult)]
    assert actions == ["open", "open", "resolve", "resolve"]


async def test_a_batch_of_new_existing_and_repeated_groups(
    store: Store, rules: IntakeRules
) -> None:
    # What the batch reads ahead (its groups before it, ids for new rows) serves each group's
    # first payload only: a later one sees what the earlier ones of the batch wrote.
    await store.ingest_batch([(parsed("open"), T0), (parsed("closed"), T0)], rules)
    await store.ingest_batch([(parsed("closed", status="resolved"), T0 + 1)], rules)
    again = payload(alert("a", starts="2026-11-22T13:00:00Z"), group="closed")
    refired = parse_payload(json.dumps(again).encode())
    items = [
        (parsed("new"), T0 + 2),
        (parsed("open", fp="b"), T0 + 2),
        (refired, T0 + 3),  # fires again after its resolve: a new incident
        (parsed("new", fp="b"), T0 + 2),
        (parsed("new", status="resolved"), T0 + 4),
        (parsed("other"), T0 + 2),
    ]
    results = await store.ingest_batch(items, rules)
    actions = [r.action if isinstance(r, IngestResult) else r for r in results]
    assert actions == ["open", "update", "open", "update", "refresh", "open"]
    listed = await store.incidents(None, {}, 20)
    assert sorted((i.group_key, i.state) for i in listed) == [
        ("closed", "resolved"),
        ("closed", "triggered"),
        ("new", "triggered"),
        ("open", "triggered"),
        ("other", "triggered"),
    ]
    # Ids taken ahead keep newer incidents' ids larger (PostgreSQL opens in key order).
    assert max(i.id for i in listed if i.group_key == "other") == max(i.id for i in listed)


async def test_a_group_another_replica_made_after_the_read_ahead_still_applies(
    store: Store, rules: IntakeRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race: the batch read "no such group" ahead, then another replica committed it.
    await store.ingest_batch([(parsed("raced"), T0)], rules)
    load_many = groups.load_many

    async def stale(tx: Tx, keys: Iterable[groups.Key]) -> dict[groups.Key, groups.Group | None]:
        return dict.fromkeys(await load_many(tx, keys))

    monkeypatch.setattr(groups, "load_many", stale)
    results = await store.ingest_batch(
        [(parsed("raced", fp="b"), T0 + 1), (parsed("fresh"), T0 + 1)], rules
    )
    assert [r.action for r in results if isinstance(r, IngestResult)] == ["update", "open"]
    listed = await store.incidents(None, {}, 10)
    assert sorted(i.group_key for i in listed) == ["fresh", "raced"]  # one incident each


def _old_statements(kind: str) -> list[tuple[int, str]]:
    found = []
    for path in sorted((OLD_MIGRATIONS / kind).glob("*.sql")):
        found.append((int(path.name.split("_", 1)[0]), path.read_text(encoding="utf-8")))
    return found


def _create_old_sqlite(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for version, sql in _old_statements("sqlite"):
        db.executescript(sql)
        db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    db.commit()
    db.close()


async def _create_old_postgres(dsn: str) -> None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for version, sql in _old_statements("postgres"):
            await conn.execute(sql.encode())
            await conn.execute("INSERT INTO schema_version VALUES (%s)", (version,))


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_database_made_by_the_twin_migrations_opens(
    kind: str, tmp_path: Path, unique: str, rules: IntakeRules
) -> None:
    async with postgres_database(unique) as dsn:
        if kind == "sqlite":
            _create_old_sqlite(tmp_path / "old.db")
            store = make_store(SqliteStore(path=tmp_path / "old.db"))
        else:
            await _create_old_postgres(dsn)
            store = make_store(PostgresStore(type="postgres", dsn=dsn))
        await store.open()
        try:
            opened = await store.ingest(parsed("g"), T0, rules)
            assert opened.action == "open"
            await store.ingest_batch([(parsed("h"), T0)], rules, ("inbox", 1))
            assert await store.inbox_mark("inbox") == 1
        finally:
            await store.close()


def test_the_one_migration_source_renders_the_twin_files() -> None:
    # The schema each database gets is the one the former per-database files created.
    def code(text: str) -> list[str]:
        lines = (line.split("--")[0].rstrip() for line in text.splitlines())
        return [line for line in lines if line]

    source = ROOT / "receiver" / "store" / "migrations"
    for dialect in (SQLITE, POSTGRES):
        for path in sorted((OLD_MIGRATIONS / dialect.name).glob("*.sql")):
            rendered = dialect.schema((source / path.name).read_text(encoding="utf-8"))
            assert code(rendered) == code(path.read_text(encoding="utf-8")), path.name


def test_rendering_placeholders_and_tokens() -> None:
    sql = "SELECT * FROM t WHERE a = ? AND b = :name AND c::text LIKE '5%'{lock}"
    assert SQLITE.render(sql) == "SELECT * FROM t WHERE a = ? AND b = :name AND c::text LIKE '5%'"
    assert POSTGRES.render(sql) == (
        "SELECT * FROM t WHERE a = %s AND b = %(name)s AND c::text LIKE '5%%' FOR UPDATE"
    )


_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b")
_PYFORMAT = re.compile(r"%s|%\(\w+\)s")


def test_no_sql_in_the_receiver_uses_driver_placeholders() -> None:
    # One convention (`?` / `:name`, rendered per database): `%s` must not come back.
    offenders = []
    for path in sorted((ROOT / "receiver").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if _SQL.search(text) and _PYFORMAT.search(text):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


async def test_concurrent_intakes_fail_alone(store: Store, rules: IntakeRules) -> None:
    bad = parsed("bad").model_copy(update={"truncatedAlerts": 2**70})
    calls = [store.ingest(parsed(f"g{i}"), T0, rules) for i in range(20)]
    calls.insert(7, store.ingest(bad, T0, rules))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[7], Exception)
    rest = results[:7] + results[8:]
    assert all(isinstance(r, IngestResult) and r.action == "open" for r in rest)
    assert len(await store.incidents(None, {}, 100)) == 20


async def test_postgres_answers_a_duplicate_without_the_group_lock(
    tmp_path: Path, unique: str, rules: IntakeRules
) -> None:
    async with opened_store("postgres", tmp_path, unique) as store:
        assert (await store.ingest(parsed("g"), T0, rules)).action == "open"
        dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={unique}"
        async with await psycopg.AsyncConnection.connect(dsn) as other:
            # Another replica holds the group's row lock (mid-intake).
            await other.execute("SELECT * FROM alert_groups WHERE group_key = 'g' FOR UPDATE")
            again = await asyncio.wait_for(store.ingest(parsed("g"), T0 + 1, rules), 5)
            assert again.action == "none"
            change = asyncio.ensure_future(
                store.ingest(parsed("g", status="resolved"), T0 + 2, rules)
            )
            await asyncio.sleep(0.3)
            assert not change.done()  # a change waits for the lock, then decides again
            await other.rollback()
        assert (await asyncio.wait_for(change, 5)).action == "resolve"


async def test_postgres_intakes_arriving_together_share_one_transaction(
    tmp_path: Path, unique: str, rules: IntakeRules
) -> None:
    async with opened_store("postgres", tmp_path, unique) as store:
        results = await asyncio.gather(
            *(store.ingest(parsed(f"g{i}"), T0, rules) for i in range(10))
        )
        assert {r.action for r in results} == {"open"}
        dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={unique}"
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cursor = await conn.execute("SELECT COUNT(DISTINCT xmin::text) FROM incidents")
            assert await cursor.fetchone() == (1,)


async def test_two_replicas_batches_in_opposite_orders_do_not_deadlock(
    tmp_path: Path, unique: str, rules: IntakeRules
) -> None:
    # Each batch locks its groups in key order, whatever order its payloads came in.
    async with opened_store("postgres", tmp_path, unique) as one:
        config = PostgresStore(type="postgres", dsn=f"host=127.0.0.1 dbname={unique} user=postgres")
        two = make_store(config)
        await two.open()
        try:
            keys = [f"k{i}" for i in range(8)]
            for step in range(6):
                now = T0 + step
                # A new alert in every group at every step: each payload changes its group.
                forward = [(parsed(k, fp=f"a{step}"), now) for k in keys]
                backward = list(reversed(forward))
                found = await asyncio.gather(
                    one.ingest_batch(forward, rules), two.ingest_batch(backward, rules)
                )
                for results in found:
                    assert not [r for r in results if isinstance(r, Exception)]
            incidents = await one.incidents(None, {}, 100)
            assert len(incidents) == len(keys)
            assert {i.state for i in incidents} == {"triggered"}
        finally:
            await two.close()


def rows_read(plan: dict[str, Any], table: str) -> int:
    """Return how many rows of `table` a plan (EXPLAIN ANALYZE, JSON) read, kept or not."""
    read = 0
    if plan.get("Relation Name") == table:
        counts = ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck")
        read = sum(plan.get(count, 0) for count in counts) * plan["Actual Loops"]
    return read + sum(rows_read(child, table) for child in plan.get("Plans", []))


async def test_postgres_reads_a_batchs_groups_by_key_whatever_the_statistics(
    tmp_path: Path, unique: str
) -> None:
    # Every group has the same receiver name, and the table was never analyzed: a planner left
    # to choose reads every group of that receiver, so each batch would cost as much as the
    # table is big.
    async with opened_store("postgres", tmp_path, unique):
        dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={unique}"
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("ALTER TABLE alert_groups SET (autovacuum_enabled = false)")
            await conn.execute(
                "INSERT INTO alert_groups (receiver, group_key) "
                "SELECT 'hook', 'g' || n FROM generate_series(1, 5000) AS n"
            )
            # As many keys as a busy batch brings: probing each looks dear next to the few
            # rows the planner expects of the receiver name.
            new = [("hook", f"new{n}") for n in range(60)]
            keys = [("hook", f"g{n}") for n in (7, 2500, 4999)] + new
            sent = RecordingTx(POSTGRES)
            await groups.load_many(sent, keys)
            [(sql, params)] = [(sql, p) for _, sql, p in sent.sent if "alert_groups" in sql]
            # Never a cached generic plan: one made while the table was a page would scan it.
            assert statement(sql)[1] is False
            explain = b"EXPLAIN (ANALYZE, FORMAT JSON) " + statement(sql)[0]
            found = await (await conn.execute(explain, params)).fetchone()
            assert found is not None
            assert rows_read(found[0][0]["Plan"], "alert_groups") <= len(keys)
            rows = await (await conn.execute(statement(sql)[0], params)).fetchall()
            assert sorted(r[1] for r in rows) == ["g2500", "g4999", "g7"]


def test_postgres_plans_reads_of_an_array_at_each_run_and_prepares_the_rest() -> None:
    # A generic plan made while a table was empty scans every row of it ever after.
    query, prepare = statement("SELECT id FROM incidents WHERE id {any}")
    assert query == b"SELECT id FROM incidents WHERE id = ANY(%s)"
    assert prepare is False
    assert statement("UPDATE incidents SET state = ? WHERE id = ?")[1] is None
