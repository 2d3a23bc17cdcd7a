"""SIGKILL (or SIGSTOP, then SIGKILL) the real receiver at each point of one SMS delivery.

The points: after the claim (the row is `sending`, its start mark not yet committed); after the
request left (the Twilio stand-in has created the message and holds the answer back); after
Twilio answered (the result not yet committed); after the commit. And once more after the
request left, with Twilio's lookup API failing, so the message's fate cannot be known.

Two stores: two replicas on PostgreSQL, where the survivor takes the row over once its lease
(send timeout 2 s + lease margin 1 s) ends; and SQLite, where the receiver is restarted. With
SIGSTOP the frozen receiver keeps its sockets and its PostgreSQL transaction open while the
lease runs out, then it is killed. Each case names its promised outcome (docs/receiver/
channels.md has the same table) and checks it against what the Twilio stand-in created.

How the receiver is held at a point: on PostgreSQL a trigger makes replica A's start-mark or
result UPDATE wait on an advisory lock the test holds (B, and every other statement, pass);
the stand-in holds Twilio's answer; SQLite's result commit waits on a write lock the test
holds. SQLite's "after the claim" state is what a receiver killed there leaves: a row claimed
by the store (here from the test process) that nothing finishes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from receiver.intake.payload import parse_payload
from receiver.store.sqlite import SqliteBackend
from tests.conftest import free_port
from tests.receiver._helpers import (
    EVERYTHING,
    alert,
    payload,
    postgres_database,
    rules_for,
    wait_for,
)
from tests.receiver._process_helpers import (
    FakeTwilio,
    Receiver,
    fake_twilio,
    file_lines,
    query,
    sms_channel_yaml,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LEASE = 3.0  # send_timeout 2s + lease_margin 1s
HOLD = 4242  # the advisory lock the trigger waits on
TRIGGER = """
CREATE FUNCTION hold_replica_a() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('application_name') = 'rx-a' AND (
       (TG_ARGV[0] = 'start' AND OLD.started_at IS NULL AND NEW.started_at IS NOT NULL)
    OR (TG_ARGV[0] = 'finish' AND OLD.status = 'sending' AND NEW.status <> 'sending')) THEN
    PERFORM pg_advisory_lock(4242);
    PERFORM pg_advisory_unlock(4242);
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER hold BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION hold_replica_a('{at}');
"""


@dataclass(frozen=True)
class Promise:
    """What a crash at one point must end in."""

    status: str  # the SMS row's final status
    asked: bool  # whether Twilio's list was consulted before anything was resent
    fallback: bool  # whether the fallback channel got the page


PROMISES = {
    "after_claim": Promise("sent", asked=False, fallback=False),  # never left: just sent
    "after_request": Promise("sent", asked=True, fallback=False),  # Twilio has it: not resent
    "after_answer": Promise("sent", asked=True, fallback=False),
    "after_commit": Promise("sent", asked=False, fallback=False),
    "lookup_down": Promise("unknown", asked=True, fallback=True),  # fate unknown: fallback
}
CASES = [
    (store, point, how)
    for store in ("postgres", "sqlite")
    for point in PROMISES
    for how in ("sigkill", "sigstop")
    # SQLite's after-claim state is made without a process to signal; one lookup-down case
    # per store is enough.
    if not (store == "sqlite" and point == "after_claim" and how == "sigstop")
    and not (point == "lookup_down" and how == "sigstop")
]


def config(tmp_path: Path, twilio: FakeTwilio, store: str, name: str) -> Path:
    """Write one replica's config: SMS to the stand-in, fallback to a file channel."""
    token = tmp_path / "twilio-token"
    token.write_text("tok3n\n")
    path = tmp_path / f"{name}.yml"
    path.write_text(
        f"store: {store}\n"
        "webhook: {auth: none}\n"
        "channels:\n"
        f"  - {sms_channel_yaml('sms', twilio.url, token)}\n"
        f"  - {{name: mail, type: file, path: '{tmp_path / 'fallback.jsonl'}'}}\n"
        "default_route: {channels: [sms]}\n"
        "delivery: {send_timeout: 2s, lease_margin: 1s, poll_interval: 100ms,"
        " backoff_initial: 200ms, backoff_max: 400ms, max_attempts: 3, fallback_channel: mail}\n"
        "retention: {enabled: false}\n"
    )
    return path


def pg_store(dsn: str, replica: str) -> str:
    """Return a replica's store section; its application name lets the trigger pick it."""
    return f"{{type: postgres, dsn: '{dsn} application_name=rx-{replica}'}}"


class Outbox:
    """Read the SMS row from outside the receivers."""

    def __init__(self, db: Path | None = None, dsn: str = "") -> None:
        self.db, self.dsn = db, dsn

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a read-only query on either store."""
        if self.db is not None:
            return query(self.db, sql)
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn:
            cursor = await conn.execute(sql.encode())
            return await cursor.fetchall()

    async def status(self) -> str | None:
        """Return the SMS row's status, if it exists."""
        found = await self.rows("SELECT status FROM outbox WHERE channel = 'sms'")
        return str(found[0][0]) if found else None

    async def timeline(self) -> list[str]:
        """Return the SMS row's delivery log (outcome: detail)."""
        found = await self.rows(
            "SELECT d.outcome, d.detail FROM deliveries d JOIN outbox o ON o.id = d.outbox_id"
            " WHERE o.channel = 'sms' ORDER BY d.id"
        )
        return [f"{outcome}: {detail}" for outcome, detail in found]


@asynccontextmanager
async def held(dsn: str, at: str | None) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Install the trigger for `at` (if any) and hold its advisory lock; yield the session."""
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    async with conn:
        if at is not None:
            await conn.execute(TRIGGER.format(at=at).encode())
        await conn.execute("SELECT pg_advisory_lock(%s)", (HOLD,))
        yield conn


async def waiting_on_hold(dsn: str) -> bool:
    """Return whether replica A waits on the test's advisory lock.

    pg_locks spans the whole server, which other databases share: only this database's wait
    on HOLD counts (a one-bigint key is objid, with objsubid 1).
    """
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = 0 AND objid = %s AND objsubid = 1",
            (HOLD,),
        )
        found = await cursor.fetchone()
        return bool(found and found[0])


def freeze_or_kill(rx: Receiver, how: str) -> None:
    """SIGKILL now; or SIGSTOP (the caller lets the lease run out) before the SIGKILL."""
    if how == "sigstop":
        os.kill(rx.pid(), signal.SIGSTOP)
    else:
        rx.kill()


async def check(outbox: Outbox, twilio: FakeTwilio, tmp_path: Path, point: str) -> None:
    """Wait for the final state and check it against the point's promise."""
    promise = PROMISES[point]
    await wait_for(lambda: _final(outbox, promise), timeout=60, what=f"SMS row {promise.status}")
    if promise.fallback:
        await wait_for(
            lambda: file_lines(tmp_path / "fallback.jsonl"), timeout=30, what="fallback page"
        )
    await asyncio.sleep(LEASE)  # a duplicate would be sent within one more lease
    log = await outbox.timeline()
    assert len(twilio.bodies) == 1, (twilio.bodies, log)
    assert (twilio.lookups > 0) is promise.asked, (twilio.lookups, log)
    assert len(file_lines(tmp_path / "fallback.jsonl")) == int(promise.fallback), log
    if promise.fallback:
        assert log[-1].startswith("unknown: could not ask Twilio"), log
        assert log[-1].endswith("falling back to mail"), log


async def _final(outbox: Outbox, promise: Promise) -> bool:
    return await outbox.status() == promise.status


@pytest.mark.parametrize(("store", "point", "how"), CASES)
async def test_crash_at_each_delivery_point(
    tmp_path: Path, unique: str, store: str, point: str, how: str
) -> None:
    async with fake_twilio() as twilio, aiohttp.ClientSession() as http:
        if point in ("after_request", "lookup_down") or (store, point) == (
            "sqlite",
            "after_answer",
        ):
            twilio.stall = asyncio.Event()  # Twilio creates the message, holds the answer
        if point == "lookup_down":
            twilio.list_status = 500
        if store == "postgres":
            async with postgres_database(unique) as dsn:
                await two_replicas(tmp_path, twilio, http, dsn, point, how)
        else:
            await restart(tmp_path, twilio, http, point, how)


async def two_replicas(
    tmp_path: Path,
    twilio: FakeTwilio,
    http: aiohttp.ClientSession,
    dsn: str,
    point: str,
    how: str,
) -> None:
    """Replica A delivers and dies at `point`; replica B, running, finishes the job."""
    a, b = (
        Receiver(
            config(
                tmp_path, twilio, f"{{type: postgres, dsn: '{dsn} application_name=rx-{n}'}}", n
            ),
            free_port(),
            tmp_path / f"{n}.log",
        )
        for n in ("a", "b")
    )
    outbox = Outbox(dsn=dsn)
    a.start()
    try:
        await a.ready(http)
        trigger = {"after_claim": "start", "after_answer": "finish"}.get(point)
        async with held(dsn, trigger) as session:
            await post(http, a)
            await reach(point, twilio, outbox, lambda: waiting_on_hold(dsn))
            freeze_or_kill(a, how)
            b.start()
            await b.ready(http)
            if how == "sigstop":
                await asyncio.sleep(LEASE + 1)  # B runs while A is frozen past its lease
                a.kill()
            await session.execute("SELECT pg_advisory_unlock(%s)", (HOLD,))
            if twilio.stall is not None:
                twilio.stall.set()
            await check(outbox, twilio, tmp_path, point)
    finally:
        for rx in (a, b):
            if rx.process is not None and rx.process.poll() is None:
                rx.kill()


async def restart(
    tmp_path: Path, twilio: FakeTwilio, http: aiohttp.ClientSession, point: str, how: str
) -> None:
    """The only receiver (SQLite) dies at `point` and is started again."""
    db = tmp_path / "r.db"
    path = config(tmp_path, twilio, f"{{type: sqlite, path: '{db}'}}", "rx")
    rx = Receiver(path, free_port(), tmp_path / "rx.log")
    outbox = Outbox(db=db)
    try:
        if point == "after_claim":
            await claimed_then_abandoned(path, db)
        else:
            rx.start()
            await rx.ready(http)
            await post(http, rx)
            lock = sqlite3.connect(db, isolation_level=None, timeout=30)
            with closing(lock):
                await reach(point, twilio, outbox, lambda: True)
                if point == "after_answer":
                    # Hold the result's commit: Twilio answers, the receiver waits to write.
                    lock.execute("BEGIN IMMEDIATE")
                    assert twilio.stall is not None
                    twilio.stall.set()
                    await asyncio.sleep(0.5)  # the answer reaches the receiver
                freeze_or_kill(rx, how)
                if how == "sigstop":
                    await asyncio.sleep(LEASE + 1)
                    rx.kill()
                if lock.in_transaction:
                    lock.execute("ROLLBACK")
            if twilio.stall is not None:
                twilio.stall.set()
        rx.start()
        await rx.ready(http)
        await check(outbox, twilio, tmp_path, point)
    finally:
        if rx.process is not None and rx.process.poll() is None:
            rx.kill()


async def claimed_then_abandoned(path: Path, db: Path) -> None:
    """Leave what a receiver killed right after its claim leaves: a `sending` row, unstarted."""
    rules = rules_for(path.read_text())
    store = SqliteBackend(db)
    await store.open()
    try:
        await store.ingest(parse_payload(webhook()), time.time(), rules)
        (row,) = await store.claim(time.time(), EVERYTHING, LEASE, 5, 900.0)
        assert (row.channel, row.started_at) == ("sms", None)
    finally:
        await store.close()


def webhook() -> bytes:
    """Return one critical alert's webhook body."""
    return json.dumps(payload(alert("crash"))).encode()


async def post(http: aiohttp.ClientSession, rx: Receiver) -> None:
    """Send the webhook; it must be accepted."""
    async with http.post(f"{rx.url}/webhooks/alertmanager", data=webhook()) as response:
        assert response.status == 200, await response.text()


async def reach(point: str, twilio: FakeTwilio, outbox: Outbox, blocked: Any) -> None:
    """Wait until the delivering receiver is at `point`."""
    if point in ("after_request", "lookup_down", "after_answer") and twilio.stall is not None:
        await wait_for(lambda: twilio.arrived >= 1, timeout=30, what="request at Twilio")
    if point in ("after_claim", "after_answer") and twilio.stall is None:
        await wait_for(blocked, timeout=30, what="replica A held at the trigger")
    if point == "after_commit":
        await wait_for(lambda: _final(outbox, PROMISES[point]), timeout=30, what="SMS sent")
