"""The PostgreSQL inbox table of real `maintwatch-receiver` processes (the default there).

A 200 means the webhook is committed in PostgreSQL's inbox table; one applier at a time across
the replicas applies it and deletes it in the same transaction.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.receiver._helpers import PG_ADMIN, alert, payload, postgres_database, wait_for
from tests.receiver._process_helpers import (
    FakeTwilio,
    Receiver,
    fake_twilio,
    receiver_process,
    sms_paging_config,
)
from tests.receiver.test_inbox import applier_pid, body, gauge

pytestmark = pytest.mark.e2e
TOKEN = "api-t0ken"


def config_text(tmp_path: Path, twilio: FakeTwilio, dsn: str) -> str:
    """Return a PostgreSQL receiver config paging one SMS channel (intake mode by default)."""
    store = f"{{type: postgres, dsn: '{dsn}', pool_size: 4}}"
    return sms_paging_config(store, tmp_path, twilio, TOKEN)


@dataclass(frozen=True)
class PgWorld:
    """What a receiver under test here talks to, and how the test reaches it."""

    dsn: str
    config: Path
    twilio: FakeTwilio
    http: aiohttp.ClientSession


@asynccontextmanager
async def pg_world(tmp_path: Path, unique: str) -> AsyncIterator[PgWorld]:
    """Yield a scratch database named `unique`, a fake Twilio, a client session, and a config
    for them written to `tmp_path`; the test starts as many receivers on it as it needs."""
    async with (
        postgres_database(unique) as dsn,
        fake_twilio() as twilio,
        aiohttp.ClientSession() as http,
    ):
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, twilio, dsn))
        yield PgWorld(dsn, config, twilio, http)


async def sql(dsn: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the test database; return its rows (none for writes)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(statement.encode(), params)
        return await cursor.fetchall() if cursor.description else []


_COUNT = {t: f"SELECT COUNT(*) FROM {t}" for t in ("inbox", "inbox_failed", "incidents")}  # noqa: S608


async def count(dsn: str, table: str) -> int:
    """Return the number of rows in one of the tables these tests watch."""
    return int((await sql(dsn, _COUNT[table]))[0][0])


async def post(http: aiohttp.ClientSession, rx: Receiver, message: dict[str, Any]) -> int:
    """POST a webhook; return the inbox seq it was accepted as."""
    async with http.post(f"{rx.url}/webhooks/alertmanager", json=message) as response:
        assert response.status == 200, await response.text()
        answer = await response.json()
    assert answer["status"] == "ok", answer
    return int(answer["accepted"])


def firing_pages(twilio: FakeTwilio, pattern: str = r"Inbox\d{4}") -> Counter[str]:
    """Count the opening SMS per incident name (not the resolved one, nor the "x2" update)."""
    return Counter(
        re.search(pattern, b).group()  # type: ignore[union-attr]
        for b in twilio.bodies
        if not b.startswith("RESOLVED") and not re.search(pattern + " x", b)
    )


def paged_once_each(twilio: FakeTwilio, count: int, pattern: str = r"Inbox\d{4}") -> bool:
    """Return whether each of `count` incidents was paged exactly once (fail on a second)."""
    pages = firing_pages(twilio, pattern)
    assert max(pages.values(), default=1) == 1, pages.most_common(3)
    return len(pages) == count


async def test_sigkill_right_after_200s_loses_nothing_and_pages_once(
    tmp_path: Path, unique: str
) -> None:
    total = 60
    async with (
        pg_world(tmp_path, unique) as world,
        receiver_process(world.config, tmp_path / "receiver.log") as rx,
    ):
        await rx.ready(world.http)
        seqs = await asyncio.gather(*(post(world.http, rx, body(i)) for i in range(total)))
        rx.kill()  # right after the last 200: most were not applied yet
        assert len(set(seqs)) == total
        # Committed before the answer: what was not applied yet is in the table.
        assert await count(world.dsn, "inbox") + await count(world.dsn, "incidents") == total
        rx.start()
        await rx.ready(world.http)
        await wait_for(
            lambda: _equals(count(world.dsn, "incidents"), total), timeout=30, what="incidents"
        )
        await wait_for(lambda: paged_once_each(world.twilio, total), timeout=30, what="pages")
        await asyncio.sleep(1.0)  # a second page would show up by now
        assert paged_once_each(world.twilio, total)
        assert await count(world.dsn, "inbox") == 0
        assert rx.stop() == 0


async def test_a_stuck_applier_shows_in_the_backlog_gauges(tmp_path: Path, unique: str) -> None:
    pending = "maintwatch_receiver_intake_pending"
    age = "maintwatch_receiver_intake_oldest_pending_age_seconds"
    async with (
        pg_world(tmp_path, unique) as world,
        receiver_process(world.config, tmp_path / "receiver.log") as rx,
    ):
        await rx.ready(world.http)
        stuck = applier_pid(rx)
        os.kill(stuck, signal.SIGSTOP)  # alive, holding the inbox lock's session, applying nothing
        try:
            await asyncio.gather(*(post(world.http, rx, body(i)) for i in range(5)))

            async def waiting() -> bool:  # the table's rows, counted with the store gauges
                return await gauge(world.http, rx, pending) == 5

            await wait_for(waiting, timeout=30, what="the table's rows counted")
            assert await gauge(world.http, rx, age) > 0
        finally:
            os.kill(stuck, signal.SIGCONT)

        async def drained() -> bool:
            left = await gauge(world.http, rx, pending), await gauge(world.http, rx, age)
            return left == (0, 0)

        await wait_for(drained, timeout=30, what="an empty backlog")
        assert await count(world.dsn, "incidents") == 5
        assert rx.stop() == 0


async def _equals(value: Any, expected: int) -> bool:
    return bool(await value == expected)


def group_messages(index: int) -> list[dict[str, Any]]:
    """Return one group's webhooks in the order Alertmanager sends them: grow, then resolve."""
    name, group = f"Order{index:04d}", f"order{index}"
    one = alert(f"o{index}a", alertname=name)
    two = alert(f"o{index}b", alertname=name)
    done = [
        alert(f"o{index}{x}", "resolved", ends="2026-11-22T12:10:00Z", alertname=name) for x in "ab"
    ]
    messages = [payload(one, group=group), payload(one, two, group=group)]
    messages.append(payload(*done, group=group))
    messages[-1]["status"] = "resolved"
    for message in messages:
        message["commonLabels"] = {"alertname": name, "severity": "critical"}
    return messages


async def test_two_replicas_keep_each_groups_order_and_page_once(
    tmp_path: Path, unique: str
) -> None:
    groups = 40
    async with (
        pg_world(tmp_path, unique) as world,
        receiver_process(world.config, tmp_path / "a.log") as a,
        receiver_process(world.config, tmp_path / "b.log") as b,
    ):
        await a.ready(world.http)
        await b.ready(world.http)

        async def send(index: int) -> None:
            # Like Alertmanager: each of a group's notifications waits for the previous
            # one's 200; the replica answering alternates.
            for step, message in enumerate(group_messages(index)):
                await post(world.http, (a, b)[(index + step) % 2], message)

        await asyncio.gather(*(send(i) for i in range(groups)))
        await wait_for(lambda: _equals(count(world.dsn, "inbox"), 0), timeout=30, what="applied")
        rows = await sql(world.dsn, "SELECT state, COUNT(*) FROM incidents GROUP BY state")
        # Out of order, a resolve applied before its firing webhook would leave a group
        # firing, or open a second incident.
        assert rows == [("resolved", groups)], rows
        alerts = await sql(world.dsn, "SELECT COUNT(*) FROM incident_alerts")
        assert alerts == [(2 * groups,)]
        pattern = r"Order\d{4}"
        await wait_for(lambda: paged_once_each(world.twilio, groups, pattern), what="pages")
        await asyncio.sleep(1.0)
        assert paged_once_each(world.twilio, groups, pattern)
        assert await count(world.dsn, "inbox_failed") == 0
        assert a.stop() == 0
        assert b.stop() == 0


async def test_a_poison_row_is_kept_and_later_ones_apply(tmp_path: Path, unique: str) -> None:
    async with (
        pg_world(tmp_path, unique) as world,
        receiver_process(world.config, tmp_path / "receiver.log") as rx,
    ):
        await rx.ready(world.http)
        await post(world.http, rx, body(0))
        # A row this parser refuses, as one accepted by an older, laxer receiver would be.
        await sql(world.dsn, "INSERT INTO inbox (received_at, body) VALUES (0, %s)", (b"{",))
        await post(world.http, rx, body(1))
        await wait_for(lambda: _equals(count(world.dsn, "incidents"), 2), what="later webhook")
        await wait_for(lambda: _equals(count(world.dsn, "inbox"), 0), what="inbox emptied")
        failed = await sql(world.dsn, "SELECT seq, body, error FROM inbox_failed")
        assert [bytes(b) for _, b, _ in failed] == [b"{"]
        assert failed[0][0] == 2
        assert "PayloadError" in failed[0][2]
        async with world.http.get(f"{rx.url}/metrics") as response:
            metrics = await response.text()
        assert "maintwatch_receiver_intake_apply_failures_total 1.0" in metrics
        assert "event=webhook_apply_failed" in (tmp_path / "receiver.log").read_text()
        await wait_for(lambda: paged_once_each(world.twilio, 2), what="pages")
        assert rx.stop() == 0


async def test_rows_wait_while_the_store_is_unavailable_to_the_applier(
    tmp_path: Path, unique: str
) -> None:
    total = 10
    async with (
        pg_world(tmp_path, unique) as world,
        receiver_process(world.config, tmp_path / "receiver.log") as rx,
    ):
        await rx.ready(world.http)
        applier = applier_pid(rx)
        os.kill(applier, signal.SIGSTOP)  # the rows stay in the table for now
        try:
            await asyncio.gather(*(post(world.http, rx, body(i)) for i in range(total)))
            assert await count(world.dsn, "inbox") == total
            # No connection to the database from now on, for anyone (superusers too).
            await sql(PG_ADMIN, f'ALTER DATABASE "{unique}" ALLOW_CONNECTIONS false')
            await sql(
                PG_ADMIN,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (unique,),
            )
        finally:
            os.kill(applier, signal.SIGCONT)
        log = tmp_path / "receiver.log"
        await wait_for(
            lambda: "applier: store unavailable, retrying" in log.read_text(),
            what="the applier waiting",
        )
        assert applier_pid(rx) == applier  # it waits; it does not skip or exit
        await sql(PG_ADMIN, f'ALTER DATABASE "{unique}" ALLOW_CONNECTIONS true')
        await wait_for(
            lambda: _equals(count(world.dsn, "incidents"), total), timeout=30, what="applied"
        )
        assert await count(world.dsn, "inbox") == 0
        await wait_for(lambda: paged_once_each(world.twilio, total), timeout=30, what="pages")
        assert rx.stop() == 0


async def test_reads_after_a_200_see_the_webhook(tmp_path: Path, unique: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with (
        pg_world(tmp_path, unique) as world,
        receiver_process(world.config, tmp_path / "receiver.log") as rx,
    ):
        await rx.ready(world.http)
        for index in range(15):
            await post(world.http, rx, body(index))
            started = time.monotonic()
            async with world.http.get(f"{rx.url}/api/v1/incidents", headers=auth) as response:
                listed = await response.json()
            assert time.monotonic() - started < 2.0
            assert len(listed["incidents"]) == index + 1, listed
        assert rx.stop() == 0


async def test_a_dropped_append_connection_answers_503_then_reconnects(
    tmp_path: Path, unique: str
) -> None:
    async with (
        pg_world(tmp_path, unique) as world,
        receiver_process(world.config, tmp_path / "receiver.log") as rx,
    ):
        await rx.ready(world.http)
        await post(world.http, rx, body(0))
        # The appends' own connection (a thread's blocking one): the server ends it.
        found = await sql(
            PG_ADMIN,
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = %s AND query LIKE 'INSERT INTO inbox%%'",
            (unique,),
        )
        assert len(found) == 1, found
        await sql(PG_ADMIN, "SELECT pg_terminate_backend(%s)", (found[0][0],))
        statuses = []
        for index in range(1, 4):
            async with world.http.post(
                f"{rx.url}/webhooks/alertmanager", json=body(index)
            ) as response:
                statuses.append(response.status)
        # An append on the dead connection fails as retryable (Alertmanager sends it again);
        # the next one reconnects. Never a 500, and nothing answered 200 is lost.
        assert statuses in ([503, 200, 200], [200, 200, 200]), statuses
        accepted = 1 + statuses.count(200)
        await wait_for(lambda: _applied(world.dsn, accepted), what="applied")
        assert rx.stop() == 0


async def _applied(dsn: str, incidents: int) -> bool:
    return await count(dsn, "inbox") == 0 and await count(dsn, "incidents") == incidents
