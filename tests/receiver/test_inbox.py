"""The inbox intake of the real `maintwatch-receiver` process (the default with SQLite).

A 200 means the webhook is in the inbox file, fsync'd; the applier process applies it later.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest

from receiver.intake import inbox
from tests.receiver._helpers import alert, payload, wait_for
from tests.receiver._process_helpers import (
    FakeTwilio,
    Receiver,
    fake_twilio,
    query,
    receiver_process,
    sms_paging_config,
)

pytestmark = pytest.mark.e2e
TOKEN = "api-t0ken"


def config_text(tmp_path: Path, twilio: FakeTwilio) -> str:
    """Return a receiver config paging one SMS channel, with the API on."""
    store = f"{{type: sqlite, path: {tmp_path / 'r.db'}}}"
    return sms_paging_config(store, tmp_path, twilio, TOKEN)


def body(index: int) -> dict[str, object]:
    """Return a webhook opening its own incident."""
    name = f"Inbox{index:04d}"
    out = payload(alert(f"fp{index}", alertname=name), group=f"g{index}")
    out["commonLabels"] = {"alertname": name, "severity": "critical"}
    return out


async def post(http: aiohttp.ClientSession, rx: Receiver, index: int) -> int:
    """POST a webhook; return the inbox seq it was accepted as."""
    async with http.post(f"{rx.url}/webhooks/alertmanager", json=body(index)) as response:
        assert response.status == 200, await response.text()
        answer = await response.json()
    assert answer["status"] == "ok"
    return int(answer["accepted"])


def incidents(db: Path) -> int:
    """Return how many incidents the store holds."""
    return int(query(db, "SELECT COUNT(*) FROM incidents")[0][0])


def paged_once_each(twilio: FakeTwilio, count: int) -> bool:
    """Return whether each of `count` incidents got exactly one SMS (fail on a second)."""
    per_incident = Counter(re.search(r"Inbox\d{4}", b).group() for b in twilio.bodies)  # type: ignore[union-attr]
    assert max(per_incident.values(), default=1) == 1, per_incident.most_common(3)
    return len(per_incident) == count


def applier_argv(rx: Receiver) -> tuple[int, list[bytes]]:
    """Return the pid and command line of the receiver's applier process."""
    children = Path(f"/proc/{rx.pid()}/task/{rx.pid()}/children").read_text().split()
    for pid in children:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if b"receiver.intake.applier" in argv:
            return int(pid), argv
    raise AssertionError(f"no applier among {children}")


def applier_pid(rx: Receiver) -> int:
    """Return the pid of the receiver's applier process."""
    return applier_argv(rx)[0]


# uvloop by default (maintwatch.loop); asyncio's own loop is the opt-out, and works alike.
@pytest.mark.parametrize(("event_loop", "runs_on"), [("auto", b"uvloop"), ("asyncio", b"asyncio")])
async def test_sigkill_right_after_200s_loses_nothing_and_pages_once(
    tmp_path: Path, event_loop: str, runs_on: bytes
) -> None:
    db, count = tmp_path / "r.db", 60
    async with fake_twilio() as twilio, aiohttp.ClientSession() as http:
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, twilio))
        flags = (f"--event-loop={event_loop}",)
        async with receiver_process(config, tmp_path / "receiver.log", flags) as rx:
            await rx.ready(http)
            assert runs_on in applier_argv(rx)[1]  # the applier runs on the receiver's loop
            seqs = await asyncio.gather(*(post(http, rx, i) for i in range(count)))
            rx.kill()  # right after the last 200: most were not applied yet
            assert sorted(seqs) == list(range(1, count + 1))
            rx.start()
            await rx.ready(http)
            await wait_for(lambda: incidents(db) == count, timeout=30, what="every incident")
            await wait_for(lambda: paged_once_each(twilio, count), timeout=30, what="pages")
            await asyncio.sleep(1.0)  # a second page would show up by now
            assert paged_once_each(twilio, count)
            assert rx.stop() == 0


async def test_applier_killed_alone_is_restarted_and_catches_up(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    async with fake_twilio() as twilio, aiohttp.ClientSession() as http:
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, twilio))
        async with receiver_process(config, tmp_path / "receiver.log") as rx:
            await rx.ready(http)
            await post(http, rx, 0)
            first = applier_pid(rx)
            os.kill(first, signal.SIGKILL)
            # Accepted while no applier runs: answered once on disk, applied once it is back.
            await asyncio.gather(*(post(http, rx, i) for i in range(1, 20)))
            await wait_for(lambda: incidents(db) == 20, timeout=30, what="caught up")
            assert applier_pid(rx) != first
            await wait_for(lambda: paged_once_each(twilio, 20), timeout=30, what="pages")
            log = (tmp_path / "receiver.log").read_text()
            assert "event=intake_applier_exited" in log
            assert rx.stop() == 0


async def gauge(http: aiohttp.ClientSession, rx: Receiver, name: str) -> float:
    """Return the value of an unlabelled gauge on the receiver's /metrics."""
    async with http.get(f"{rx.url}/metrics") as response:
        found = re.search(rf"^{name} (\S+)$", await response.text(), re.M)
    assert found is not None, name
    return float(found[1])


async def test_a_stuck_applier_shows_in_the_backlog_gauges(tmp_path: Path) -> None:
    pending = "maintwatch_receiver_intake_pending"
    age = "maintwatch_receiver_intake_oldest_pending_age_seconds"
    db = tmp_path / "r.db"
    async with fake_twilio() as twilio, aiohttp.ClientSession() as http:
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, twilio))
        async with receiver_process(config, tmp_path / "receiver.log") as rx:

            async def drained() -> bool:
                return (await gauge(http, rx, pending), await gauge(http, rx, age)) == (0, 0)

            await rx.ready(http)
            await post(http, rx, 0)
            await wait_for(drained, timeout=30, what="the first webhook applied")
            stuck = applier_pid(rx)
            os.kill(stuck, signal.SIGSTOP)  # alive, holding its pipes, applying nothing
            try:
                await asyncio.gather(*(post(http, rx, i) for i in range(1, 6)))
                assert await gauge(http, rx, pending) == 5
                first = await gauge(http, rx, age)
                await asyncio.sleep(0.5)
                assert await gauge(http, rx, age) > first > 0  # grows while nothing applies
            finally:
                os.kill(stuck, signal.SIGCONT)
            await wait_for(drained, timeout=30, what="an empty backlog")
            assert incidents(db) == 6
            assert rx.stop() == 0


async def test_a_payload_that_fails_to_apply_is_kept_and_later_ones_apply(tmp_path: Path) -> None:
    db, inbox = tmp_path / "r.db", tmp_path / "r.db.inbox"
    async with fake_twilio() as twilio, aiohttp.ClientSession() as http:
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, twilio))
        async with receiver_process(config, tmp_path / "receiver.log") as rx:
            await rx.ready(http)
            await post(http, rx, 0)
            # A row this parser refuses, as one accepted by an older, laxer receiver would be.
            with closing(sqlite3.connect(inbox, timeout=10)) as conn, conn:
                conn.execute("INSERT INTO inbox (received_at, body) VALUES (?, ?)", (0.0, b"{"))
            await post(http, rx, 1)
            await wait_for(lambda: incidents(db) == 2, timeout=30, what="the later webhook")
            failed = query(inbox, "SELECT seq, body, error FROM inbox_failed")
            assert [(seq, bytes(b)) for seq, b, _ in failed] == [(2, b"{")]
            assert "PayloadError" in failed[0][2]
            assert query(inbox, "SELECT COUNT(*) FROM inbox") == [(0,)]  # applied rows pruned
            async with http.get(f"{rx.url}/metrics") as response:
                metrics = await response.text()
            assert "maintwatch_receiver_intake_apply_failures_total 1.0" in metrics
            log = (tmp_path / "receiver.log").read_text()
            assert "event=webhook_apply_failed" in log  # the applier logs on the receiver's stream
            assert "event=incident_opened" in log
            assert rx.stop() == 0


async def test_reads_after_a_200_see_the_webhook(tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with fake_twilio() as twilio, aiohttp.ClientSession() as http:
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, twilio))
        async with receiver_process(config, tmp_path / "receiver.log") as rx:
            await rx.ready(http)
            for index in range(15):
                await post(http, rx, index)
                started = time.monotonic()
                async with http.get(f"{rx.url}/api/v1/incidents", headers=auth) as response:
                    listed = await response.json()
                assert time.monotonic() - started < 2.0
                assert len(listed["incidents"]) == index + 1, listed
            async with http.get(f"{rx.url}/metrics") as response:
                lag = re.search(
                    r"^maintwatch_receiver_intake_lag_seconds (\S+)$", await response.text(), re.M
                )
            assert lag is not None
            assert 0 < float(lag[1]) < 2.0  # from the 200 to the applier's commit
            assert rx.stop() == 0


async def test_watchdog_alerts_are_taken_out_before_the_inbox_is_applied(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    async with fake_twilio() as twilio, aiohttp.ClientSession() as http:
        config = tmp_path / "receiver.yml"
        text = (
            config_text(tmp_path, twilio) + "watchdog: {expect_every: 5m, notify: [channel:sms]}\n"
        )
        config.write_text(text)
        async with receiver_process(config, tmp_path / "receiver.log") as rx:
            await rx.ready(http)
            beat = payload(alert("wd", alertname="Watchdog", severity="none"), group="wd")
            async with http.post(f"{rx.url}/webhooks/alertmanager", json=beat) as response:
                assert await response.json() == {"status": "ok", "action": "watchdog"}
            mixed = body(0)
            mixed["alerts"] = [*mixed["alerts"], *beat["alerts"]]  # type: ignore[misc]
            async with http.post(f"{rx.url}/webhooks/alertmanager", json=mixed) as response:
                assert (await response.json())["accepted"] == 1  # the beat alone was not stored
            await wait_for(lambda: incidents(db) == 1, timeout=30, what="the incident")
            assert query(db, "SELECT COUNT(*) FROM incident_alerts") == [(1,)]
            assert rx.stop() == 0


async def test_concurrent_appends_share_commits_and_each_answer_names_its_own_row(
    tmp_path: Path,
) -> None:
    box = inbox.Inbox(tmp_path / "r.db.inbox")
    await box.open()
    try:
        bodies = [f"body-{n}".encode() for n in range(300)]
        seqs = await asyncio.gather(*(box.append(float(n), b) for n, b in enumerate(bodies)))
    finally:
        await box.close()
    assert len(set(seqs)) == len(seqs)
    db, _ = inbox.connect(tmp_path / "r.db.inbox")
    with closing(db):
        stored = {row.seq: row.body for row in inbox.read_after(db, 0, 1000)}
        assert [stored[s] for s in seqs] == bodies
        inbox.prune(db, 1, max(stored))
        last = inbox.last_seq(db)
    box = inbox.Inbox(tmp_path / "r.db.inbox")
    await box.open()
    try:
        # AUTOINCREMENT: numbers keep rising past pruned rows, never reused below the mark.
        assert await box.append(2.0, b"next") == last + 1
    finally:
        await box.close()
