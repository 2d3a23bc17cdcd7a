"""Schedules: rotations, layers, restrictions and overrides across DST changes (fake instants)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from maintwatch.configload import ConfigError
from receiver.config import load_config_text
from receiver.oncall.schedules import (
    ScheduleConfig,
    handoff_at,
    layer_on_call,
    localize,
    on_call,
    shifts,
)
from tests.receiver._helpers import open_webhook

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def schedule(tz: str = "Europe/Berlin", overrides: Any = (), *layers: dict[str, Any]) -> Any:
    """Return a validated schedule (one daily a/b/c layer at 09:00 when no layers are given)."""
    default = {"rotation": "daily", "handoff": "09:00", "start": "2026-03-01"}
    return ScheduleConfig.model_validate(
        {
            "name": "s",
            "timezone": tz,
            "layers": list(layers) or [{**default, "participants": ["a", "b", "c"]}],
            "overrides": list(overrides),
        }
    )


def local(tz: ZoneInfo, *parts: int) -> datetime:
    """Return an unambiguous local instant."""
    return localize(datetime(*parts), tz)  # type: ignore[arg-type]


def test_localize_maps_a_spring_forward_gap_to_the_first_valid_instant() -> None:
    assert localize(datetime(2026, 3, 29, 2, 30), BERLIN) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert localize(datetime(2026, 3, 29, 2, 0), BERLIN) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert localize(datetime(2026, 3, 8, 2, 30), NEW_YORK) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)


def test_localize_takes_the_first_of_two_fall_back_occurrences() -> None:
    assert localize(datetime(2026, 10, 25, 2, 30), BERLIN) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert localize(datetime(2026, 11, 1, 1, 30), NEW_YORK) == datetime(
        2026, 11, 1, 5, 30, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("tz", "first_day", "short_or_long"),
    [
        (BERLIN, date(2026, 3, 27), 23),  # CET → CEST on 2026-03-29
        (BERLIN, date(2026, 10, 23), 25),  # CEST → CET on 2026-10-25
        (NEW_YORK, date(2026, 3, 6), 23),  # EST → EDT on 2026-03-08
        (NEW_YORK, date(2026, 10, 30), 25),  # EDT → EST on 2026-11-01
    ],
)
def test_daily_handoff_stays_at_nine_local_across_dst(
    tz: ZoneInfo, first_day: date, short_or_long: int
) -> None:
    sched = schedule(
        str(tz),
        (),
        {"rotation": "daily", "handoff": "09:00", "start": first_day, "participants": ["a", "b"]},
    )
    start = local(tz, first_day.year, first_day.month, first_day.day, 9)
    end = localize(datetime.combine(first_day + timedelta(days=5), time(9)), tz)
    found = shifts(sched, start, end)
    assert [s.start.astimezone(tz).hour for s in found] == [9] * 5
    assert [s.people for s in found] == [("a",), ("b",), ("a",), ("b",), ("a",)]
    lengths = sorted((s.end - s.start) / timedelta(hours=1) for s in found[:4])
    assert short_or_long in lengths
    assert lengths.count(24) == 3


def test_handoff_inside_the_spring_forward_gap_happens_at_the_first_valid_instant() -> None:
    sched = schedule(
        "Europe/Berlin",
        (),
        {
            "rotation": "daily",
            "handoff": "02:30",
            "start": "2026-03-27",
            "participants": ["a", "b"],
        },
    )
    layer = sched.layers[0]
    assert handoff_at(layer, BERLIN, 2) == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert handoff_at(layer, BERLIN, 3) == local(BERLIN, 2026, 3, 30, 2, 30)
    assert on_call(sched, datetime(2026, 3, 29, 0, 59, tzinfo=UTC)) == ["b"]
    assert on_call(sched, datetime(2026, 3, 29, 1, 0, tzinfo=UTC)) == ["a"]


def test_handoff_in_the_repeated_hour_happens_once_at_its_first_occurrence() -> None:
    sched = schedule(
        "Europe/Berlin",
        (),
        {
            "rotation": "daily",
            "handoff": "02:30",
            "start": "2026-10-24",
            "participants": ["a", "b"],
        },
    )
    assert on_call(sched, datetime(2026, 10, 25, 0, 29, tzinfo=UTC)) == ["a"]
    assert on_call(sched, datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == ["b"]
    assert on_call(sched, datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == ["b"]  # 02:30 again


def test_a_week_of_weekly_rotation_and_the_next_handoff() -> None:
    sched = schedule(
        "Europe/Berlin",
        (),
        {
            "rotation": "weekly",
            "handoff": "10:00",
            "start": "2026-03-23",
            "participants": ["a", "b"],
        },
    )
    monday = local(BERLIN, 2026, 3, 23, 10)
    for hours in range(0, 7 * 24, 5):
        assert on_call(sched, monday + timedelta(hours=hours)) == ["a"]
    assert on_call(sched, local(BERLIN, 2026, 3, 30, 9, 59)) == ["a"]
    assert on_call(sched, local(BERLIN, 2026, 3, 30, 10)) == ["b"]
    assert on_call(sched, local(BERLIN, 2026, 4, 6, 10)) == ["a"]


def test_custom_rotation_lengths_use_wall_clock_steps() -> None:
    three_days = schedule(
        "UTC",
        (),
        {"rotation": "3d", "handoff": "00:00", "start": "2026-01-01", "participants": ["a", "b"]},
    )
    assert on_call(three_days, datetime(2026, 1, 3, 23, tzinfo=UTC)) == ["a"]
    assert on_call(three_days, datetime(2026, 1, 4, tzinfo=UTC)) == ["b"]
    twelve_hours = schedule(
        "Europe/Berlin",
        (),
        {"rotation": "12h", "handoff": "09:00", "start": "2026-03-28", "participants": ["d", "n"]},
    )
    found = shifts(twelve_hours, local(BERLIN, 2026, 3, 28, 9), local(BERLIN, 2026, 3, 30, 9))
    assert [s.start.astimezone(BERLIN).hour for s in found] == [9, 21, 9, 21]
    assert [s.people for s in found] == [("d",), ("n",), ("d",), ("n",)]


def test_nobody_is_on_call_before_the_rotation_starts() -> None:
    sched = schedule()
    assert on_call(sched, local(BERLIN, 2026, 3, 1, 8, 59)) == []
    assert on_call(sched, local(BERLIN, 2026, 3, 1, 9)) == ["a"]


def business_hours() -> dict[str, Any]:
    """Return a weekday 09:00-17:00 layer with one participant."""
    return {
        "rotation": "weekly",
        "handoff": "09:00",
        "start": "2026-03-02",
        "participants": ["lead"],
        "restrictions": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00"}
        ],
    }


def test_a_later_layer_overrides_where_it_has_someone() -> None:
    base = {"rotation": "weekly", "handoff": "09:00", "start": "2026-03-02", "participants": ["x"]}
    sched = schedule("Europe/Berlin", (), base, business_hours())
    assert on_call(sched, local(BERLIN, 2026, 3, 27, 12)) == ["lead"]  # Friday noon
    assert on_call(sched, local(BERLIN, 2026, 3, 27, 17)) == ["x"]  # Friday 17:00
    assert on_call(sched, local(BERLIN, 2026, 3, 28, 12)) == ["x"]  # Saturday
    week = shifts(sched, local(BERLIN, 2026, 3, 23, 0), local(BERLIN, 2026, 3, 30, 0))
    assert [s.people for s in week] == [("x",), ("lead",)] * 5 + [("x",)]
    assert all(s.start.astimezone(BERLIN).hour in (0, 9, 17) for s in week)


def test_overnight_restriction_covers_the_next_morning() -> None:
    night = {
        **business_hours(),
        "restrictions": [{"days": ["fri"], "from": "22:00", "to": "06:00"}],
    }
    sched = schedule("Europe/Berlin", (), night)
    assert on_call(sched, local(BERLIN, 2026, 3, 27, 21, 59)) == []
    assert on_call(sched, local(BERLIN, 2026, 3, 28, 5, 59)) == ["lead"]  # Saturday morning
    assert on_call(sched, local(BERLIN, 2026, 3, 28, 6)) == []


def test_an_override_crossing_a_handoff_wins_then_the_rotation_continues() -> None:
    override = {"person": "o", "start": "2026-03-28T18:00", "end": "2026-03-30T09:00"}
    sched = schedule("Europe/Berlin", [override])
    found = shifts(sched, local(BERLIN, 2026, 3, 28, 9), local(BERLIN, 2026, 3, 31, 9))
    assert [(s.start.astimezone(BERLIN).strftime("%d %H"), s.people) for s in found] == [
        ("28 09", ("a",)),
        ("28 18", ("o",)),
        ("30 09", ("c",)),
    ]
    assert found[1].end - found[1].start == timedelta(hours=38)  # 39 wall hours minus DST


def test_overrides_with_offsets_and_overlaps() -> None:
    overrides = [
        {"person": "o", "start": "2026-03-10T10:00:00+00:00", "end": "2026-03-10T12:00:00+00:00"},
        {"person": "p", "start": "2026-03-10T11:00:00+00:00", "end": "2026-03-10T13:00:00+00:00"},
    ]
    sched = schedule("Europe/Berlin", overrides)
    assert on_call(sched, datetime(2026, 3, 10, 10, 30, tzinfo=UTC)) == ["o"]
    assert on_call(sched, datetime(2026, 3, 10, 11, 30, tzinfo=UTC)) == ["o", "p"]
    assert on_call(sched, datetime(2026, 3, 10, 12, 30, tzinfo=UTC)) == ["p"]


def test_layer_on_call_needs_an_aware_instant() -> None:
    with pytest.raises(ValueError, match="time zone-aware"):
        layer_on_call(schedule().layers[0], BERLIN, datetime(2026, 3, 10))


def test_shifts_of_an_empty_range_is_empty() -> None:
    at = datetime(2026, 3, 10, tzinfo=UTC)
    assert shifts(schedule(), at, at) == []


CONFIG = """
people: [{{id: a, name: A}}]
schedules:
  - name: s
    timezone: {tz}
    layers:
      - {{rotation: {rotation}, handoff: "{handoff}", start: 2026-01-01, participants: [a, {who}]}}
    overrides: [{{person: {who}, start: "2026-01-02T10:00", end: "{end}"}}]
  - {{name: s, layers: [{{rotation: daily, start: 2026-01-01, participants: [a]}}]}}
"""


def problems(**values: str) -> list[str]:
    """Return the config problems for a schedule section with these values."""
    base = {"tz": "UTC", "rotation": "daily", "handoff": "09:00", "who": "a", "end": "2026-01-03"}
    with pytest.raises(ConfigError) as caught:
        load_config_text(open_webhook(CONFIG.format(**{**base, **values})), "c.yml")
    return caught.value.problems


DUPLICATE = "c.yml: schedules[1].name: duplicate schedule name 's' (first at schedules[0])"


def test_config_reports_bad_values_with_their_location() -> None:
    # The second schedule repeats the first one's name: reported in the same run, every time.
    assert problems(tz="Mars/Olympus") == [
        "c.yml: schedules[0].timezone: unknown IANA time zone 'Mars/Olympus'",
        DUPLICATE,
    ]
    assert problems(rotation="30m") == [
        "c.yml: schedules[0].layers[0].rotation: rotation must be whole minutes and at least 1h",
        DUPLICATE,
    ]
    assert problems(rotation="fortnightly")[0].startswith(
        "c.yml: schedules[0].layers[0].rotation: invalid duration 'fortnightly'"
    )
    assert problems(handoff="24:00") == [
        "c.yml: schedules[0].layers[0].handoff: expected a time of day HH:MM (00:00-23:59), "
        "got '24:00'",
        DUPLICATE,
    ]
    assert problems(end="2026-01-02T09:00") == [
        "c.yml: schedules[0]: overrides[0]: end must be after start",
        DUPLICATE,
    ]


def test_config_reports_unknown_people_and_duplicate_names() -> None:
    assert problems(who="zed") == [
        DUPLICATE,
        "c.yml: schedules[0].layers[0].participants[1]: unknown person 'zed'",
        "c.yml: schedules[0].overrides[0].person: unknown person 'zed'",
    ]
