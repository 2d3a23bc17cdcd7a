"""Property-based tests of schedule maths over random zones, rotations and instants."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.oncall.schedules import (
    ScheduleConfig,
    handoff_at,
    layer_on_call,
    localize,
    on_call,
    shift_index,
    shifts,
)

# Zones with 1 h, 30 min (Lord Howe) and 45-min-offset (Chatham) changes, southern-hemisphere
# DST, and none at all.
ZONES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "UTC",
]
ROTATIONS = ["daily", "weekly", "3d", "12h", "8h", "2h", "150m"]
PROPERTY = settings(max_examples=150, deadline=None)

clock = st.integers(0, 24 * 60 - 1).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")
days = st.dates(date(2025, 1, 1), date(2027, 12, 31))


@st.composite
def layers(draw: st.DrawFn, restricted: bool = False) -> dict[str, Any]:
    """Draw one rotation layer, maybe with a restriction window."""
    layer: dict[str, Any] = {
        "rotation": draw(st.sampled_from(ROTATIONS)),
        "handoff": draw(clock),
        "start": draw(days),
        "participants": draw(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=4)),
    }
    if restricted and draw(st.booleans()):
        weekdays = st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
        layer["restrictions"] = [
            {
                "days": draw(st.lists(weekdays, min_size=1, max_size=7, unique=True)),
                "from": draw(clock),
                "to": draw(clock),
            }
        ]
    return layer


@st.composite
def schedules(draw: st.DrawFn) -> ScheduleConfig:
    """Draw a schedule of one or two layers and up to two overrides."""
    tz = draw(st.sampled_from(ZONES))
    overrides = []
    for _ in range(draw(st.integers(0, 2))):
        start = draw(st.datetimes(datetime(2025, 6, 1), datetime(2027, 6, 1)))
        length = draw(st.integers(30, 3 * 24 * 60))
        overrides.append(
            {
                "person": draw(st.sampled_from("xyz")),
                "start": start,
                "end": start + timedelta(minutes=length),
            }
        )
    return ScheduleConfig.model_validate(
        {
            "name": "s",
            "timezone": tz,
            "layers": draw(st.lists(layers(restricted=True), min_size=1, max_size=2)),
            "overrides": overrides,
        }
    )


instants = st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@PROPERTY
@given(layer=layers(), tz=st.sampled_from(ZONES), offset=st.integers(0, 400 * 86400))
def test_exactly_one_participant_per_layer_after_the_start(
    layer: dict[str, Any], tz: str, offset: int
) -> None:
    config = ScheduleConfig.model_validate({"name": "s", "timezone": tz, "layers": [layer]})
    zone, rotation = ZoneInfo(tz), config.layers[0]
    at = handoff_at(rotation, zone, 0) + timedelta(seconds=offset)
    index = shift_index(rotation, zone, at)
    assert index is not None
    assert handoff_at(rotation, zone, index) <= at < handoff_at(rotation, zone, index + 1)
    who = layer_on_call(rotation, zone, at)
    assert who == rotation.participants[index % len(rotation.participants)]


@PROPERTY
@given(layer=layers(), tz=st.sampled_from(ZONES), index=st.integers(0, 2000))
def test_handoffs_happen_at_the_local_handoff_time_or_the_end_of_a_gap(
    layer: dict[str, Any], tz: str, index: int
) -> None:
    config = ScheduleConfig.model_validate({"name": "s", "timezone": tz, "layers": [layer]})
    zone, rotation = ZoneInfo(tz), config.layers[0]
    instant = handoff_at(rotation, zone, index)
    naive = datetime.combine(rotation.start, rotation.handoff) + index * timedelta(
        seconds=rotation.rotation
    )
    wall = instant.astimezone(zone).replace(tzinfo=None)
    if wall != naive:
        # The wall time does not exist: we are at the first instant after the gap, and the
        # second before it was still before the wanted wall time.
        before = (instant - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None)
        assert before < naive < wall
    assert handoff_at(rotation, zone, index + 1) > instant


@PROPERTY
@given(
    schedule=schedules(),
    start=instants,
    hours=st.integers(1, 21 * 24),
    probes=st.lists(st.integers(0, 999_999), min_size=1, max_size=8),
)
def test_shifts_tile_the_range_and_agree_with_on_call(
    schedule: ScheduleConfig, start: datetime, hours: int, probes: list[int]
) -> None:
    end = start + timedelta(hours=hours)
    found = shifts(schedule, start, end)
    assert found[0].start == start
    assert found[-1].end == end
    for before, after in itertools.pairwise(found):
        assert before.end == after.start
        assert before.people != after.people
    for shift in found:
        assert shift.start < shift.end
        assert list(shift.people) == on_call(schedule, shift.start)
        assert list(shift.people) == on_call(schedule, shift.end - timedelta(microseconds=1))
    for millionths in probes:
        at = start + (end - start) * millionths / 1_000_000
        containing = next(s for s in found if s.start <= at < s.end)
        assert list(containing.people) == on_call(schedule, at)


@PROPERTY
@given(naive=st.datetimes(datetime(2025, 1, 1), datetime(2028, 1, 1)), tz=st.sampled_from(ZONES))
def test_localize_round_trips_every_existing_wall_time(naive: datetime, tz: str) -> None:
    zone = ZoneInfo(tz)
    instant = localize(naive, zone)
    wall = instant.astimezone(zone).replace(tzinfo=None)
    assert wall >= naive
    if wall != naive:  # only inside a gap, which is at most an hour
        assert wall - naive <= timedelta(hours=1)
        assert localize(wall, zone) == instant
