"""The daily digest: window across DST, grouping, rendering, once per day across restarts."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from receiver.appkeys import DIGEST, STORE
from receiver.delivery.digest import Window, build, due_window, notification
from receiver.delivery.templates import Renderer
from receiver.web.settings import DigestConfig
from tests.receiver._ack_helpers import ack_config, serve
from tests.receiver._channel_helpers import blocks
from tests.receiver._helpers import (
    LOG,
    FakeClock,
    Script,
    alert,
    payload,
    register_script,
    store_dsn,
    store_yaml,
)

BERLIN = DigestConfig(at=time(9, 0), timezone="Europe/Berlin")
# Europe/Berlin springs forward on 2026-03-29 (02:00 CET → 03:00 CEST).
BEFORE_DST = datetime(2026, 3, 28, 8, 0, 30, tzinfo=UTC).timestamp()  # 09:00:30 CET
AFTER_DST = datetime(2026, 3, 29, 7, 0, 30, tzinfo=UTC).timestamp()  # 09:00:30 CEST


def utc(*args: int) -> float:
    """Return epoch seconds of a UTC wall time."""
    return datetime(*args, tzinfo=UTC).timestamp()  # type: ignore[arg-type, misc]


def test_window_follows_local_time_across_dst() -> None:
    assert due_window(utc(2026, 3, 28, 7, 59), BERLIN) is None  # 08:59 CET
    first = due_window(BEFORE_DST, BERLIN)
    assert first == Window(date(2026, 3, 28), utc(2026, 3, 27, 8), utc(2026, 3, 28, 8))
    assert due_window(utc(2026, 3, 29, 6, 59), BERLIN) is None  # 08:59 CEST
    second = due_window(AFTER_DST, BERLIN)
    assert second == Window(date(2026, 3, 29), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7))
    assert second.until - second.since == 23 * 3600  # the short day
    autumn = due_window(utc(2026, 10, 25, 9), BERLIN)  # back to CET: a 25-hour day
    assert autumn is not None
    assert autumn.until - autumn.since == 25 * 3600


def row(
    incident_id: int, opened: float, state: str = "triggered", route: str = "ops"
) -> dict[str, object]:
    """Return a stored info incident as the ledger returns it."""
    return {
        "id": incident_id,
        "state": state,
        "routes": [route] if route else [],
        "channels": ["chat"],
        "group_labels": {"alertname": f"Info{incident_id}"},
        "common_labels": {"alertname": f"Info{incident_id}", "team": "<b>ops</b>"},
        "opened_at": opened,
        "alerts": [],
    }


def test_digest_is_named_after_the_route_that_sent_it_there() -> None:
    window = Window(date(2026, 3, 29), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7))
    audited = {**row(1, utc(2026, 3, 28, 12)), "routes": ["everything-to-audit", "daily-review"]}
    assert [d.route for d in build([audited], window, [])] == ["daily-review"]


def test_build_groups_by_route_and_counts() -> None:
    window = Window(date(2026, 3, 29), utc(2026, 3, 28, 8), utc(2026, 3, 29, 7))
    rows = [
        row(1, utc(2026, 3, 20), "triggered"),  # old but still open
        row(2, utc(2026, 3, 28, 12), "resolved"),  # fired and resolved within the day
        row(3, utc(2026, 3, 28, 13), "triggered", route=""),
    ]
    digests = build(rows, window, [])
    assert [d.route for d in digests] == ["default", "ops"]
    ops = digests[1]
    assert ([r["id"] for r in ops.fired], [r["id"] for r in ops.still_open]) == ([2], [1])
    assert ops.channels == ("chat",)
    assert build(rows, window, ["mail"])[0].channels == ("mail",)
    message = notification(ops, window)
    assert message.kind == "digest"
    assert message.title == "Daily digest 2026-03-29 (ops): 1 fired, 1 still open"
    text = Renderer(blocks("console"), None, LOG).render(message, AFTER_DST)["text"]
    assert text.startswith("[DIGEST] Daily digest 2026-03-29 (ops)")
    assert "- #2 Info2 [resolved]" in text
    chat = Renderer(blocks("slack"), None, LOG).render(message, AFTER_DST)
    assert chat["title"] == message.title
    assert "Still open (1):" in chat["text"]
    sms = Renderer(blocks("sms"), None, LOG).render(message, AFTER_DST)["text"]
    assert sms == message.title


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_digest_once_per_day_across_restart_and_dst(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, unique: str
) -> None:
    script: Script = register_script(monkeypatch)
    clock = FakeClock(utc(2026, 3, 28, 7))  # 08:00 CET
    info = {"severity": "info"}
    async with store_dsn(kind, unique) as dsn:
        text = ack_config(
            tmp_path,
            store_yaml(kind, tmp_path, dsn),
            "https://pager.example.org",
            "digest: {at: '09:00', timezone: Europe/Berlin}",
        )
        async with serve(text, clock) as rx:
            first = payload(alert("a1", **info), group="g-a", team="ops", severity="info")
            assert (await rx.post(first)).status == 200
            assert script.sent == {}  # info never pages
            assert await rx.app[DIGEST].run_once() == 0  # not 09:00 yet
            clock.now = BEFORE_DST
            assert await rx.app[DIGEST].run_once() == 1
            assert await rx.app[DIGEST].run_once() == 0
            sent = script.sent["chat"]
            assert [n.kind for n in sent] == ["digest"]
            assert sent[0].title == "Daily digest 2026-03-28 (ops): 1 fired, 1 still open"
            clock.now = utc(2026, 3, 29, 6, 30)  # 08:30 CEST: the next day, before 09:00
            second = payload(
                alert("b1", alertname="Other", **info), group="g-b", team="ops", severity="info"
            )
            assert (await rx.post(second)).status == 200
            assert await rx.app[DIGEST].run_once() == 0
            assert await rx.app[STORE].incident(2) is not None
        async with serve(text, clock) as rx:  # a restart before 09:00 CEST
            clock.now = AFTER_DST
            assert await rx.app[DIGEST].run_once() == 1
        async with serve(text, clock) as rx:  # and one after it was sent
            assert await rx.app[DIGEST].run_once() == 0
    titles = [n.title for n in script.sent["chat"]]
    assert titles[1] == "Daily digest 2026-03-29 (ops): 1 fired, 2 still open"
    assert len(titles) == 2
