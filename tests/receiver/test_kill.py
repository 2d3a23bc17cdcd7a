"""SIGKILL the real receiver at random points of a 10 000-notification run; count the damage.

1 000 webhooks (one incident each) are routed to nine file channels (at-least-once) and one
SMS channel through the real twilio client at a local fake (at-most-once): 10 000 messages.
The receiver is killed while webhooks arrive and while messages go out, and restarted each
time; the webhook sender retries like Alertmanager (connection errors and 5xx).

Expected: nothing lost (every accepted webhook's ten messages end `sent`: an SMS cut off
mid-send is checked with Twilio and sent only if Twilio has no record of it); file messages
duplicated at most the in-flight messages of each lane per kill; no SMS ever sent twice.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.receiver._helpers import alert, payload, wait_for
from tests.receiver._process_helpers import (
    FakeTwilio,
    Receiver,
    fake_twilio,
    file_lines,
    query,
    receiver_process,
    sms_channel_yaml,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
INCIDENTS = 1000
FILE_CHANNELS = 9
CONCURRENCY = 16  # in flight per channel lane: at most this many per lane one kill cuts short
SEED = 20261122
IN_FLIGHT = CONCURRENCY * FILE_CHANNELS  # file messages one kill can cut short


def config_text(tmp_path: Path, twilio: FakeTwilio) -> str:
    """Return the receiver config: nine file channels and one SMS channel, fast retries."""
    token = tmp_path / "twilio-token"
    token.write_text("tok3n\n")
    pages = tmp_path / "pages.jsonl"
    files = [f"{{name: f{i}, type: file, path: {pages}}}" for i in range(FILE_CHANNELS)]
    channels = [*files, sms_channel_yaml("sms", twilio.url, token)]
    names = [f"f{i}" for i in range(FILE_CHANNELS)] + ["sms"]
    return (
        f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
        "webhook: {auth: none}\n"
        f"channels: [{', '.join(channels)}]\n"
        f"default_route: {{channels: [{', '.join(names)}]}}\n"
        f"delivery: {{concurrency: {CONCURRENCY}, send_timeout: 2s, poll_interval: 50ms,"
        " backoff_initial: 100ms, backoff_max: 500ms, max_attempts: 1000}\n"
        "sms_rate_limit: {max_messages: 100000, window: 1m}\n"
        "retention: {enabled: false}\n"
    )


async def post_all(http: aiohttp.ClientSession, rx: Receiver, accepted: list[int]) -> None:
    """POST every webhook until it is answered 200, retrying like Alertmanager does."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(INCIDENTS):
        queue.put_nowait(index)

    async def sender() -> None:
        while not queue.empty():
            index = queue.get_nowait()
            body = payload(alert(f"fp{index}", alertname=f"Kill{index:04d}"), group=f"g{index}")
            body["commonLabels"]["alertname"] = f"Kill{index:04d}"
            while True:
                try:
                    async with http.post(f"{rx.url}/webhooks/alertmanager", json=body) as r:
                        if r.status == 200:
                            accepted.append(index)
                            break
                        assert r.status >= 500, await r.text()
                except aiohttp.ClientError:
                    pass  # killed mid-request: the answer never came, send it again
                await asyncio.sleep(0.05)

    await asyncio.gather(*(sender() for _ in range(8)))


async def kill_at(
    rx: Receiver, http: aiohttp.ClientSession, reached: Callable[[], bool], what: str
) -> None:
    """Wait until `reached()`, then SIGKILL the receiver and start a new one."""
    await wait_for(reached, timeout=60, what=what)
    rx.kill()
    rx.start()
    await rx.ready(http)


def at_least(count: Callable[[], int], goal: int) -> Callable[[], bool]:
    """Return a predicate: has `count()` reached `goal`?"""
    return lambda: count() >= goal


def outbox_done(db: Path) -> bool:
    """Return whether every queued message reached a final state."""
    rows = dict(query(db, "SELECT status, COUNT(*) FROM outbox GROUP BY status"))
    finished = sum(rows.get(s, 0) for s in ("sent", "failed", "unknown"))
    return finished == INCIDENTS * (FILE_CHANNELS + 1)


async def test_sigkill_at_random_points_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    pages, db = tmp_path / "pages.jsonl", tmp_path / "r.db"
    accepted: list[int] = []
    kills = 0
    async with fake_twilio() as twilio, aiohttp.ClientSession() as http:
        config = tmp_path / "receiver.yml"
        config.write_text(config_text(tmp_path, twilio))
        async with receiver_process(config, tmp_path / "receiver.log") as rx:
            await rx.ready(http)
            posting = asyncio.create_task(post_all(http, rx, accepted))
            # Two kills while webhooks arrive, four while messages go out.
            for goal in sorted(rng.sample(range(100, INCIDENTS - 100), 2)):
                await kill_at(rx, http, at_least(accepted.__len__, goal), f"{goal} accepted")
                kills += 1
            total = INCIDENTS * FILE_CHANNELS
            for goal in sorted(rng.sample(range(total // 10, total * 6 // 10), 4)):
                allowed = kills * IN_FLIGHT  # fragments the kills so far may have torn
                sent = at_least(lambda n=allowed: len(file_lines(pages, n)), goal)
                await kill_at(rx, http, sent, f"{goal} sent")
                kills += 1
            await posting
            # Messages in flight at the last kill are retried once their lease (send timeout
            # + 30 s) expires.
            await wait_for(lambda: outbox_done(db), timeout=120, what="outbox drained")
            assert rx.stop() == 0
    assert sorted(accepted) == list(range(INCIDENTS))
    check_files(db, pages, kills)
    check_sms(db, twilio)


def check_files(db: Path, pages: Path, kills: int) -> None:
    """Every file message delivered; duplicates within one in-flight batch per kill."""
    expected = {str(row[0]) for row in query(db, "SELECT id FROM outbox WHERE channel != 'sms'")}
    assert len(expected) == INCIDENTS * FILE_CHANNELS
    # A kill can tear the writes in flight; each torn record is retried and appears whole.
    seen = Counter(line["id"] for line in file_lines(pages, kills * IN_FLIGHT))
    assert set(seen) == expected, "lost or unknown notifications in the file"
    duplicates = sum(count - 1 for count in seen.values())
    assert duplicates <= kills * IN_FLIGHT, duplicates
    statuses = query(db, "SELECT DISTINCT status FROM outbox WHERE channel != 'sms'")
    assert statuses == [("sent",)]


def check_sms(db: Path, twilio: FakeTwilio) -> None:
    """Every SMS sent exactly once: a send a kill cut short was checked with Twilio first."""
    per_incident = Counter(re.search(r"Kill\d{4}", body).group() for body in twilio.bodies)  # type: ignore[union-attr]
    assert len(per_incident) == INCIDENTS
    assert max(per_incident.values()) == 1, per_incident.most_common(3)
    rows = dict(query(db, "SELECT status, COUNT(*) FROM outbox WHERE channel = 'sms' GROUP BY 1"))
    assert rows == {"sent": INCIDENTS}
