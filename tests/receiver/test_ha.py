"""Two real receiver processes on one PostgreSQL: one page per step, and SIGKILL of one mid-way."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from tests.conftest import free_port
from tests.receiver._helpers import alert, payload, postgres_database, wait_for
from tests.receiver._process_helpers import file_lines
from tests.receiver.test_crash import _ready, receiver

pytestmark = pytest.mark.e2e

CONFIG = """
store: {{type: postgres, dsn: '{dsn}', pool_size: 2}}
webhook: {{auth: none}}
channels: [{{name: log, type: file, path: '{log}'}}]
people: [{{id: ann, name: Ann}}, {{id: bob, name: Bob}}, {{id: cy, name: Cy}}]
policies:
  - name: fast
    steps:
      - {{after: 0s, notify: [person:ann], via: [log]}}
      - {{after: 2s, notify: [person:bob], via: [log]}}
      - {{after: 2s, notify: [person:cy], via: [log]}}
default_route: {{policy: fast}}
escalation: {{poll_interval: 200ms}}
delivery: {{poll_interval: 200ms}}
"""


def pages(path: Path) -> list[dict[str, Any]]:
    """Return the file channel's deliveries (finished lines only: a receiver may be writing)."""
    return file_lines(path)


def who(path: Path) -> list[str]:
    """Return the recipients paged (firing), in delivery order."""
    return [p["recipient"]["id"] for p in pages(path) if p["kind"] == "firing"]


async def sent_rows(dsn: str) -> int:
    """Return how many outbox rows are delivered."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
        found = await cursor.fetchone()
        assert found is not None
        return int(found[0])


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill", "both-running"])
async def test_two_replicas_page_once_per_step(tmp_path: Path, unique: str, kill: bool) -> None:
    deliveries, config = tmp_path / "pages.jsonl", tmp_path / "receiver.yml"
    body = json.dumps(payload(alert("ha1"))).encode()
    async with postgres_database(unique) as dsn, aiohttp.ClientSession() as http:
        config.write_text(CONFIG.format(dsn=dsn, log=deliveries))
        ports = free_port(), free_port()
        urls = [f"http://127.0.0.1:{p}" for p in ports]
        log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
        with receiver(config, ports[0], log_a) as first, receiver(config, ports[1], log_b):
            for url in urls:
                await wait_for(partial(_ready, http, url), what=f"{url} ready")

            async def post(url: str) -> int:
                async with http.post(f"{url}/webhooks/alertmanager", data=body) as response:
                    return response.status

            # Both replicas get every payload, as from an Alertmanager HA pair.
            assert await asyncio.gather(*(post(u) for u in urls)) == [200, 200]
            await wait_for(lambda: who(deliveries) == ["ann"], what="step 1")
            await wait_for(lambda: sent_rows(dsn), what="step 1 recorded as sent")
            if kill:
                os.kill(first.pid, signal.SIGKILL)  # mid-escalation: steps 2 and 3 are due
                first.wait(timeout=10)
                urls = urls[1:]
            await wait_for(lambda: len(who(deliveries)) >= 3, what=f"steps 2-3; log: {log_b}")
            assert await asyncio.gather(*(post(u) for u in urls)) == [200] * len(urls)
            # Resolving tells the three people paged; a duplicate page would have come first.
            resolved = payload(alert("ha1", "resolved", ends="2026-11-22T13:00:00Z"))
            body = json.dumps(resolved).encode()
            assert await asyncio.gather(*(post(u) for u in urls)) == [200] * len(urls)
            await wait_for(lambda: len(pages(deliveries)) >= 6, what="resolved messages")
    assert who(deliveries) == ["ann", "bob", "cy"]
    assert len(pages(deliveries)) == 6
    assert [(p["kind"], p["escalation_step"]) for p in pages(deliveries)][:3] == [
        ("firing", 1),
        ("firing", 2),
        ("firing", 3),
    ]
    told = sorted(p["recipient"]["id"] for p in pages(deliveries) if p["kind"] == "resolved")
    assert told == ["ann", "bob", "cy"]
