"""`maintwatch-receiver inbox failed` and `inbox replay`, run beside a real receiver process.

Poison rows are made as the applier meets them: bodies appended to the inbox (file or table)
that this parser refuses. One of them is then given a valid body, as a fixed parser would
read it, so that a replay applies it.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.receiver._helpers import alert, payload, postgres_database, wait_for
from tests.receiver._process_helpers import BINARY, Receiver, query, receiver_process

pytestmark = pytest.mark.e2e
Sql = Callable[[str, tuple[Any, ...]], Awaitable[list[tuple[Any, ...]]]]


def config_text(tmp_path: Path, store: str, extra: str = "") -> str:
    """Return a receiver config writing every notification to a file channel."""
    return (
        f"{store}\n"
        "webhook: {auth: none}\n"
        f"channels: [{{name: pages, type: file, path: '{tmp_path / 'pages.jsonl'}'}}]\n"
        "default_route: {channels: [pages]}\n"
        "delivery: {poll_interval: 50ms}\n"
        f"{extra}"
    )


def body(name: str, version: str = "4") -> bytes:
    """Return a webhook opening an incident of its own."""
    message = payload(alert(f"fp-{name}", alertname=name), group=f'{{}}:{{alertname="{name}"}}')
    message["commonLabels"] = {"alertname": name, "severity": "critical"}
    message["version"] = version
    return json.dumps(message).encode()


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `maintwatch-receiver inbox ...` as operators do; return its outcome."""
    return subprocess.run(
        [str(BINARY), "inbox", *args, f"--config.file={config}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def pages(tmp_path: Path) -> list[str]:
    """Return the incident names the file channel was told about, sorted."""
    path = tmp_path / "pages.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return sorted(json.loads(line)["common_labels"]["alertname"] for line in lines)


async def post(http: aiohttp.ClientSession, rx: Receiver, data: bytes) -> int:
    """POST a webhook; return its inbox seq."""
    async with http.post(f"{rx.url}/webhooks/alertmanager", data=data) as response:
        assert response.status == 200, await response.text()
        return int((await response.json())["accepted"])


async def poisoned(http: aiohttp.ClientSession, rx: Receiver, sql: Sql) -> tuple[int, int]:
    """Apply one webhook, then make two kept rows; return (the fixed one, the broken one)."""
    await post(http, rx, body("Applied"))
    # Refused by this parser, as rows accepted by an older, laxer receiver would be.
    await sql("INSERT INTO inbox (received_at, body) VALUES (1, ?)", (body("Fixed", "3"),))
    await sql("INSERT INTO inbox (received_at, body) VALUES (2, ?)", (b"{",))
    await post(http, rx, body("Later"))  # applied after them: they held nothing back

    async def kept() -> list[tuple[Any, ...]]:
        found = await sql("SELECT seq FROM inbox_failed ORDER BY seq", ())
        return found if len(found) == 2 else []

    (fixed,), (broken,) = await wait_for(kept, timeout=30, what="two kept rows")
    await wait_for(lambda: pages(rx.config.parent) == ["Applied", "Later"], what="pages")
    await sql("UPDATE inbox_failed SET body = ? WHERE seq = ?", (body("Fixed"), fixed))
    return fixed, broken


async def check_list_and_replay(tmp_path: Path, rx: Receiver, sql: Sql, where: str) -> None:
    """The scenario both inboxes go through, with the receiver running beside the commands."""
    config = rx.config
    async with aiohttp.ClientSession() as http:
        await rx.ready(http)
        fixed, broken = await poisoned(http, rx, sql)

    listed = cli(config, "failed", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [r["seq"] for r in rows] == [fixed, broken]
    assert rows[0]["group_key"] == '{}:{alertname="Fixed"}'
    assert rows[0]["receiver"] == "hook"
    assert "unsupported webhook version" in rows[0]["error"]
    assert rows[1]["group_key"] is None
    assert rows[1]["body_bytes"] == 1
    assert "malformed JSON" in rows[1]["error"]
    text = cli(config, "failed")
    assert text.returncode == 0
    assert f"2 failed rows in {where}" in text.stdout
    assert "(the body does not parse)" in text.stdout

    before = await sql("SELECT seq, error, failed_at FROM inbox_failed ORDER BY seq", ())
    dry = cli(config, "replay", "--all", "--dry-run")
    assert dry.returncode == 1, dry.stderr  # one row would still fail
    assert f"seq {fixed}: would apply: incident opened, 1 notification" in dry.stdout
    assert f"seq {broken}: would still fail: PayloadError" in dry.stdout
    assert "dry run, nothing changed" in dry.stdout
    assert await sql("SELECT seq, error, failed_at FROM inbox_failed ORDER BY seq", ()) == before
    await asyncio.sleep(0.5)  # a notification queued by mistake would be sent by now
    assert pages(tmp_path) == ["Applied", "Later"]

    done = cli(config, "replay", "--all")
    assert done.returncode == 1, done.stderr
    # PostgreSQL's dry run used up an incident id (sequences ignore rollbacks): no fixed id.
    assert re.search(rf"seq {fixed}: applied: incident \d+ opened, 1 notification", done.stdout)
    assert f"seq {broken}: still fails: PayloadError: malformed JSON" in done.stdout
    left = await sql("SELECT seq, error, failed_at FROM inbox_failed", ())
    assert [(s, e.split(":")[0]) for s, e, _ in left] == [(broken, "PayloadError")]
    assert "malformed JSON" in left[0][1]
    assert left[0][2] > before[1][2]  # failed again just now
    # The running receiver's worker sends what the replay queued.
    await wait_for(lambda: pages(tmp_path) == ["Applied", "Fixed", "Later"], what="page")

    gone = cli(config, "replay", "--seq", str(fixed), str(broken))
    assert gone.returncode == 2
    assert f"--seq {fixed}: no such failed row in {where}" in gone.stderr

    # An applied webhook kept again (as a crash right after the store's commit leaves it):
    # replaying it changes nothing and pages nobody.
    again = 1000
    await sql(
        "INSERT INTO inbox_failed VALUES (?, 3, ?, 'Crash: before forgetting', 4)",
        (again, body("Applied")),
    )
    unchanged = cli(config, "replay", "--seq", str(again))
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert f"seq {again}: applied: unchanged" in unchanged.stdout
    assert [s for (s,) in await sql("SELECT seq FROM inbox_failed", ())] == [broken]
    await asyncio.sleep(0.5)
    assert pages(tmp_path) == ["Applied", "Fixed", "Later"]
    assert rx.stop() == 0


async def test_sqlite_inbox_list_and_replay_beside_the_receiver(tmp_path: Path) -> None:
    inbox = tmp_path / "r.db.inbox"
    config = tmp_path / "receiver.yml"
    config.write_text(config_text(tmp_path, f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}"))

    async def sql(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if statement.startswith("SELECT"):
            return query(inbox, statement, params)
        with closing(sqlite3.connect(inbox, timeout=10)) as conn, conn:
            conn.execute(statement, params)
        return []

    async with receiver_process(config, tmp_path / "receiver.log") as rx:
        await check_list_and_replay(tmp_path, rx, sql, str(inbox))
    assert query(tmp_path / "r.db", "SELECT COUNT(*) FROM incidents") == [(3,)]


async def test_postgres_inbox_list_and_replay_beside_the_receiver(
    tmp_path: Path, unique: str
) -> None:
    async with postgres_database(unique) as dsn:
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, f"store: {{type: postgres, dsn: '{dsn}'}}"))

        async def sql(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
            async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                cursor = await conn.execute(statement.replace("?", "%s").encode(), params)
                return await cursor.fetchall() if cursor.description else []

        async with receiver_process(config, tmp_path / "receiver.log") as rx:
            await check_list_and_replay(tmp_path, rx, sql, "PostgreSQL table inbox_failed")
        assert await sql("SELECT COUNT(*) FROM incidents", ()) == [(3,)]


async def test_postgres_replay_waits_for_the_appliers_lock(tmp_path: Path, unique: str) -> None:
    async with postgres_database(unique) as dsn:
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, f"store: {{type: postgres, dsn: '{dsn}'}}"))
        assert cli(config, "failed").returncode == 0  # creates the tables (migrations)
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO inbox_failed VALUES (7, 1, %s, 'PayloadError: old', 2)",
                (body("Late"),),
            )
        async with await psycopg.AsyncConnection.connect(dsn) as applier:
            # What an applier does while it applies a batch.
            await applier.execute("SELECT pg_advisory_xact_lock(%s)", (0x6D77_6962,))
            replaying = subprocess.Popen(
                [str(BINARY), "inbox", "replay", "--all", f"--config.file={config}"],
                stdout=subprocess.PIPE,
                text=True,
            )
            await asyncio.sleep(1.0)
            assert replaying.poll() is None  # waits for the applier's batch to commit
            await applier.commit()
        out, _ = replaying.communicate(timeout=30)
        assert replaying.returncode == 0, out
        assert "seq 7: applied: incident 1 opened" in out


def test_direct_mode_has_no_inbox(tmp_path: Path) -> None:
    config = tmp_path / "receiver.yml"
    store = f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}"
    config.write_text(config_text(tmp_path, store, "intake: {mode: direct}\n"))
    for args in (("failed",), ("replay", "--all")):
        done = cli(config, *args)
        assert done.returncode == 2
        assert "intake.mode: direct" in done.stderr
        assert "no inbox" in done.stderr
    assert not (tmp_path / "r.db.inbox").exists()


def test_a_missing_inbox_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "receiver.yml"
    config.write_text(config_text(tmp_path, f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}"))
    done = cli(config, "failed")
    assert done.returncode == 1
    assert f"{tmp_path / 'r.db.inbox'}: no inbox file" in done.stderr
    assert not (tmp_path / "r.db.inbox").exists()


def test_one_file_replay_at_a_time(tmp_path: Path) -> None:
    config = tmp_path / "receiver.yml"
    config.write_text(config_text(tmp_path, f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}"))
    inbox = tmp_path / "r.db.inbox"
    with closing(sqlite3.connect(inbox)) as conn, conn:
        conn.execute(
            "CREATE TABLE inbox_failed (seq INTEGER PRIMARY KEY, received_at REAL NOT NULL, "
            "body BLOB NOT NULL, error TEXT NOT NULL, failed_at REAL NOT NULL)"
        )
        conn.execute("INSERT INTO inbox_failed VALUES (4, 1, ?, 'PayloadError: old', 2)", (b"{",))
    with (tmp_path / "r.db.inbox.replay.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = cli(config, "replay", "--all")
        assert busy.returncode == 1
        assert "another inbox replay is running" in busy.stderr
        dry = cli(config, "replay", "--all", "--dry-run")  # writes nothing: needs no lock
        assert dry.returncode == 1
        assert "seq 4: would still fail" in dry.stdout
    assert query(inbox, "SELECT seq FROM inbox_failed") == [(4,)]


def test_bad_arguments_are_named() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "receiver", "inbox", "replay", "--seq", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--seq: '0' is not an inbox seq" in done.stderr
