"""`oncall` CLI, GET /api/v1/oncall and the iCal feed, against a real server with a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from receiver.cli import main
from receiver.oncall.ical import render
from receiver.oncall.schedules import Shift
from tests.receiver._helpers import OPEN_WEBHOOK, running

SCHEDULES = """
people:
  - {id: ann, name: Ann Example}
  - {id: bob, name: Bob}
  - {id: cy, name: "Cy, Jr."}
schedules:
  - name: primary
    timezone: Europe/Berlin
    layers:
      - {rotation: daily, handoff: "02:30", start: 2026-03-27, participants: [ann, bob]}
    overrides:
      - {person: cy, start: "2026-04-01T00:00", end: "2026-04-02T00:00"}
  - name: empty
    layers:
      - {rotation: weekly, start: 2030-01-07, participants: [ann]}
"""
NOW = datetime(2026, 3, 29, 0, 59, tzinfo=UTC).timestamp()  # 01:59 CET, a minute before DST


def config(tmp_path: Path) -> str:
    """Return a receiver config text with schedules and an API token."""
    (tmp_path / "api").write_text("tok\n")
    return (
        SCHEDULES
        + OPEN_WEBHOOK
        + f"api: {{token_file: {tmp_path / 'api'}}}\n"
        + f"store: {{type: sqlite, path: {tmp_path / 'r.db'}}}\n"
    )


def test_cli_oncall_at_a_wall_time_in_the_dst_gap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.yml"
    path.write_text(config(tmp_path))
    args = ["--config.file", str(path), "oncall", "--schedule", "primary"]
    assert main([*args, "--at", "2026-03-29T02:30"]) == 0
    assert capsys.readouterr().out == (
        "primary (Europe/Berlin) at 2026-03-29T03:00:00+02:00: Ann Example [ann] "
        "until 2026-03-30T02:30:00+02:00\n"
    )
    assert main([*args, "--at", "2026-03-29T00:59:00Z"]) == 0
    assert "01:59:00+01:00: Bob [bob] until 2026-03-29T03:00:00+02:00" in capsys.readouterr().out
    assert main([*args, "--at", "yesterday"]) == 2
    assert "oncall: expected an ISO 8601 time" in capsys.readouterr().err


def test_cli_oncall_lists_every_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.yml"
    path.write_text(config(tmp_path))
    assert main(["--config.file", str(path), "oncall", "--at", "2026-04-01T12:00"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("primary (Europe/Berlin) at 2026-04-01T12:00:00+02:00: Cy, Jr. [cy]")
    assert lines[1] == "empty (UTC) at 2026-04-01T12:00:00+00:00: nobody"
    assert main(["--config.file", str(path), "oncall", "--schedule", "nope"]) == 2
    assert capsys.readouterr().err == "oncall: unknown schedule 'nope'\n"


async def test_api_oncall_now_and_at(tmp_path: Path) -> None:
    auth = {"Authorization": "Bearer tok"}
    async with running(config(tmp_path), clock=lambda: NOW) as rx:
        async with rx.http.get(f"{rx.url}/api/v1/oncall", headers=auth) as response:
            assert response.status == 200
            body = await response.json()
        assert body["oncall"][0] == {
            "schedule": "primary",
            "timezone": "Europe/Berlin",
            "at": "2026-03-29T01:59:00+01:00",
            "people": [{"id": "bob", "name": "Bob"}],
            "until": "2026-03-29T03:00:00+02:00",
        }
        query = {"at": "2026-03-29T02:30", "schedule": "primary"}
        async with rx.http.get(f"{rx.url}/api/v1/oncall", params=query, headers=auth) as response:
            body = await response.json()
        assert [item["people"] for item in body["oncall"]] == [
            [{"id": "ann", "name": "Ann Example"}]
        ]
        async with rx.http.get(
            f"{rx.url}/api/v1/oncall", params={"at": "x"}, headers=auth
        ) as response:
            assert response.status == 400
            assert "expected an ISO 8601 time" in (await response.json())["error"]
        async with rx.http.get(f"{rx.url}/api/v1/oncall") as response:
            assert response.status == 401


async def test_api_ical_feed(tmp_path: Path) -> None:
    auth = {"Authorization": "Bearer tok"}
    async with running(config(tmp_path), clock=lambda: NOW) as rx:
        url = f"{rx.url}/api/v1/schedules/primary.ics"
        async with rx.http.get(url, params={"days": "5"}, headers=auth) as response:
            assert response.status == 200
            assert response.content_type == "text/calendar"
            text = await response.text()
        async with rx.http.get(f"{rx.url}/api/v1/schedules/nope.ics", headers=auth) as response:
            assert response.status == 404
        async with rx.http.get(url, params={"days": "0"}, headers=auth) as response:
            assert response.status == 400
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    starts = [line for line in text.split("\r\n") if line.startswith("DTSTART:")]
    # From 2026-03-27 02:30 CET (the rotation's start, within the past week) to 04-03.
    assert starts[:4] == [
        "DTSTART:20260327T013000Z",
        "DTSTART:20260328T013000Z",
        "DTSTART:20260329T010000Z",  # 02:30 does not exist that night: 03:00 CEST
        "DTSTART:20260330T003000Z",
    ]
    assert "SUMMARY:On call (primary): Cy\\, Jr." in text


def test_ical_lines_are_folded_at_75_octets() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    shift = Shift(start, start.replace(hour=9), ("p",))
    text = render("s", [shift], {"p": "Ünïcödé " * 20}, start)
    lines = text.split("\r\n")
    assert all(len(line.encode()) <= 75 for line in lines)
    unfolded = text.replace("\r\n ", "")
    assert f"SUMMARY:On call (s): {'Ünïcödé ' * 20}".rstrip() in unfolded
