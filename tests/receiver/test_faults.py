"""Fault matrix cells not covered elsewhere: what happens, what is reported, what recovers.

The matrix with every cell and its test is in docs/reliability.md (## Receiver).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import psycopg
import pytest
from structlog.testing import capture_logs

from receiver.appkeys import METRICS, STORE, WORKER
from receiver.delivery.channels.base import DeliveryError
from receiver.delivery.channels.email import EmailChannel, EmailConfig
from receiver.store import StoreUnavailable
from tests.conftest import free_port, require_tool
from tests.receiver._channel_helpers import make_context, make_notification
from tests.receiver._helpers import (
    PG_ADMIN,
    FakeClock,
    Running,
    alert,
    payload,
    postgres_database,
    running,
    wait_for,
)
from tests.receiver._process_helpers import fake_twilio, file_lines, sms_channel_yaml

FAST = "delivery: {backoff_initial: 1s, backoff_max: 2s, send_timeout: 2s, max_attempts: 10}\n"


def outcome(rx: Running, name: str) -> float:
    """Return webhooks_total for an outcome."""
    value = rx.app[METRICS].registry.get_sample_value(
        "maintwatch_receiver_webhooks_total", {"outcome": name}
    )
    return value or 0.0


async def rows(rx: Running) -> list[tuple[str, str, int]]:
    """Return (channel, status, attempts) of every outbox row."""
    out = []
    for incident in [i.to_json() for i in await rx.app[STORE].incidents(None, {}, 100)]:
        detail = (await rx.app[STORE].incident(incident["id"])).to_json()
        assert detail is not None
        out += [(n["channel"], n["status"], n["attempts"]) for n in detail["notifications"]]
    return out


# --- store faults -----------------------------------------------------------------------------

LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@contextmanager
def exclusive_lock(db: Path) -> Iterator[None]:
    """Hold an exclusive SQLite lock on `db` from another process."""
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert locker.stdout is not None
        assert locker.stdout.readline() == b"locked\n"
        yield
    finally:
        assert locker.stdin is not None
        assert locker.stdout is not None
        locker.stdin.close()
        locker.wait(timeout=10)
        locker.stdout.close()


async def test_sqlite_locked_by_another_process(tmp_path: Path) -> None:
    pages, db = tmp_path / "pages.jsonl", tmp_path / "r.db"
    text = (
        f"store: {{type: sqlite, path: {db}}}\n"
        f"channels: [{{name: f, type: file, path: {pages}}}]\n"
        "default_route: {channels: [f]}\n" + FAST
    )
    async with running(text) as rx:
        with exclusive_lock(db), capture_logs() as logs:
            # busy_timeout (5 s) passes, then: 503 so Alertmanager retries, and a log line.
            assert (await rx.post(payload(alert("a")))).status == 503
            with pytest.raises(StoreUnavailable, match="database is locked"):
                await rx.app[WORKER].run_once()
        assert outcome(rx, "unavailable") == 1
        assert [e["event"] for e in logs if e["log_level"] == "error"] == [
            "webhook_store_unavailable"
        ]
        # Lock gone: Alertmanager's retry is taken and the page goes out once.
        assert (await rx.post(payload(alert("a")))).status == 200
        await rx.app[WORKER].run_once()
        assert [line["kind"] for line in file_lines(pages)] == ["firing"]


@contextmanager
def immutable(*paths: Path) -> Iterator[None]:
    """Make files and folders read-only even for root (chattr +i), like a read-only mount."""
    chattr = require_tool("chattr")
    existing = [str(p) for p in paths if p.exists()]
    subprocess.run([chattr, "+i", *existing], check=True)
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", *existing], check=True)


async def test_sqlite_read_only_files(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "r.db"
    text = f"store: {{type: sqlite, path: {db}}}\n" + FAST
    async with running(text) as rx:
        assert (await rx.post(payload(alert("a"), group="before"))).status == 200
        # Not the -shm file: SQLite has it mapped, and a write to an immutable mapping is SIGBUS.
        with immutable(folder, db, folder / "r.db-wal"):
            response = await rx.post(payload(alert("b"), group="during"))
            assert response.status == 503
        assert outcome(rx, "unavailable") == 1
        assert (await rx.post(payload(alert("b"), group="during"))).status == 200
        assert len(await rx.app[STORE].incidents(None, {}, 10)) == 2


async def _block_group(admin: psycopg.AsyncConnection[object], group: str) -> None:
    await admin.execute(
        "INSERT INTO alert_groups (receiver, group_key) VALUES ('hook', %s)", (group,)
    )
    await admin.execute("SELECT 1 FROM alert_groups WHERE group_key = %s FOR UPDATE", (group,))


async def test_postgres_backend_terminated_mid_transaction(unique: str) -> None:
    async with postgres_database(unique) as dsn:
        text = f"store: {{type: postgres, dsn: '{dsn}', pool_size: 1}}\n" + FAST
        async with running(text) as rx:
            blocker = await psycopg.AsyncConnection.connect(dsn)
            async with blocker:
                # Hold the group's row lock: the receiver's intake stops inside its transaction.
                await _block_group(blocker, "g")
                posting = asyncio.create_task(rx.post(payload(alert("a"), group="g")))
                pid = await wait_for(lambda: _waiting_backend(unique), what="intake waiting")
                admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True)
                async with admin:
                    await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                response = await posting
                assert response.status == 503  # nothing half-written; Alertmanager retries
                await blocker.rollback()
            assert await rx.app[STORE].incidents(None, {}, 10) == []
            # The dead connection was dropped; the retry gets a new one.
            assert (await rx.post(payload(alert("a"), group="g"))).status == 200
            assert len(await rx.app[STORE].incidents(None, {}, 10)) == 1


async def _waiting_backend(database: str) -> int | None:
    admin = await psycopg.AsyncConnection.connect(PG_ADMIN, autocommit=True)
    async with admin:
        cursor = await admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            (database,),
        )
        found = await cursor.fetchone()
    return int(found[0]) if found else None


# --- channel faults through the worker --------------------------------------------------------


async def test_twilio_429_and_500_are_retried_then_sent_once(tmp_path: Path) -> None:
    clock = FakeClock()
    token = tmp_path / "token"
    token.write_text("tok3n\n")
    async with fake_twilio() as twilio:
        twilio.answers = [429, 500]
        text = (
            f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
            f"channels: [{sms_channel_yaml('sms', twilio.url, token)}]\n"
            "default_route: {channels: [sms]}\n" + FAST
        )
        async with running(text, clock) as rx:
            await rx.post(payload(alert("a")))
            for _ in range(3):
                await rx.app[WORKER].run_once()
                clock.advance(5)
            assert await rows(rx) == [("sms", "sent", 3)]
            assert len(twilio.bodies) == 1
            assert twilio.lookups == 1  # a 500 may have created it: Twilio is asked first
            detail = (await rx.app[STORE].incident(1)).to_json()
            assert detail is not None
            reasons = [d["detail"] for d in detail["deliveries"]]
            assert reasons[:2] == [
                "Twilio error 20429 (HTTP 429): Unable to create record: fake 429",
                "Twilio error 20500 (HTTP 500): Unable to create record: fake 500;"
                " may have been sent: asking before resending",
            ]


async def sms_receiver(tmp_path: Path, twilio_url: str, clock: FakeClock, extra: str = "") -> str:
    """Return a config with one SMS channel at the fake Twilio (and `extra` channels)."""
    token = tmp_path / "token"
    token.write_text("tok3n\n")
    return (
        f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
        f"channels: [{sms_channel_yaml('sms', twilio_url, token)}{extra}]\n"
        "default_route: {channels: [sms]}\n" + FAST
    )


async def test_connection_dropped_after_the_request_body_sends_no_second_sms(
    tmp_path: Path,
) -> None:
    clock = FakeClock(time.time())  # Twilio's timestamps are compared with the start mark
    async with fake_twilio() as twilio:
        twilio.hang_up = 1  # reads the request, creates the message, closes: no answer
        async with running(await sms_receiver(tmp_path, twilio.url, clock), clock) as rx:
            await rx.post(payload(alert("a")))
            await rx.app[WORKER].run_once()
            assert len(twilio.bodies) == 1
            for _ in range(3):
                clock.advance(5)
                await rx.app[WORKER].run_once()
            assert len(twilio.bodies) == 1
            assert twilio.lookups == 1
            assert await rows(rx) == [("sms", "sent", 2)]
            detail = (await rx.app[STORE].incident(1)).to_json()
            assert detail is not None
            assert detail["notifications"][0]["provider_id"] == twilio.messages[0]["sid"]
            first, second = (d["detail"] for d in detail["deliveries"])
            assert first == (
                "connection to Twilio failed after the request left: ServerDisconnectedError;"
                " may have been sent: asking before resending"
            )
            assert second == "the provider already had 1: not sent again"
            found = rx.app[METRICS].registry.get_sample_value(
                "maintwatch_receiver_notifications_reconciled_total",
                {"channel": "sms", "outcome": "found"},
            )
            assert found == 1.0


async def test_refused_connection_is_retried_without_asking(tmp_path: Path) -> None:
    clock = FakeClock(time.time())
    port = free_port()  # nothing listens yet: refused, so the request provably never left
    config = await sms_receiver(tmp_path, f"http://127.0.0.1:{port}", clock)
    async with running(config, clock) as rx:
        await rx.post(payload(alert("a")))
        await rx.app[WORKER].run_once()
        assert await rows(rx) == [("sms", "pending", 1)]
        async with fake_twilio(port) as twilio:
            clock.advance(5)
            await rx.app[WORKER].run_once()
            assert await rows(rx) == [("sms", "sent", 2)]
            assert (len(twilio.bodies), twilio.lookups) == (1, 0)


async def test_full_disk_file_channel_recovers(tmp_path: Path) -> None:
    clock = FakeClock()
    link, real = tmp_path / "pages.jsonl", tmp_path / "real.jsonl"
    link.symlink_to("/dev/full")  # every write fails with ENOSPC, like a full filesystem
    text = (
        f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
        f"channels: [{{name: f, type: file, path: {link}}}]\n"
        "default_route: {channels: [f]}\n" + FAST
    )
    async with running(text, clock) as rx:
        await rx.post(payload(alert("a")))
        await rx.app[WORKER].run_once()
        assert await rows(rx) == [("f", "pending", 1)]
        detail = (await rx.app[STORE].incident(1)).to_json()
        assert detail is not None
        assert "No space left on device" in detail["notifications"][0]["last_error"]
        link.unlink()
        link.symlink_to(real)  # space freed
        clock.advance(5)
        await rx.app[WORKER].run_once()
        assert await rows(rx) == [("f", "sent", 2)]
        assert len(file_lines(real)) == 1


# --- SMTP misbehaving mid-conversation --------------------------------------------------------


@asynccontextmanager
async def smtp_that(behaviour: str) -> AsyncIterator[int]:
    """Serve a raw SMTP server that goes silent at the greeting or hangs up during DATA."""
    release = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if behaviour == "silent":
                await release.wait()
                return
            writer.write(b"220 test ESMTP\r\n")
            while line := await reader.readline():
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    writer.write(b"250 test\r\n")
                elif verb == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    await writer.drain()
                    await reader.readline()  # the first line of the message, then hang up
                    return
                else:
                    writer.write(b"250 OK\r\n")
                await writer.drain()
        finally:
            writer.close()

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    try:
        yield port
    finally:
        release.set()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [("silent", "timed out"), ("hangup", "connection failed")],
)
async def test_smtp_silent_or_hanging_up_mid_message_is_retryable(
    behaviour: str, reason: str
) -> None:
    async with smtp_that(behaviour) as port, aiohttp.ClientSession() as http:
        config = EmailConfig.model_validate(
            {
                "name": "mail",
                "type": "email",
                "host": "127.0.0.1",
                "port": port,
                "tls": "none",
                "from": "pager@example.org",
                "to": ["ops@example.org"],
                "timeout": "0.5s",
            }
        )
        with pytest.raises(DeliveryError, match=reason) as caught:
            await EmailChannel(config, make_context(http)).send(make_notification())
    assert caught.value.retryable is True
