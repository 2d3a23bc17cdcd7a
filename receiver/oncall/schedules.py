"""On-call schedules: layered rotations, restrictions and overrides, DST-correct (pure).

Time rules, in the schedule's IANA time zone:

* Hand-offs are wall-clock times: the k-th hand-off is `start + k × rotation` at `handoff` local
  time, so a daily 09:00 hand-off stays at 09:00 across DST changes (the shift that spans a
  change is an hour shorter or longer).
* A wall time that does not exist (the spring-forward gap, e.g. 02:30 on 2026-03-29 in
  Europe/Berlin) happens at the first valid instant after it: the moment of the change (03:00).
* A wall time that exists twice (fall-back) happens at its first occurrence.
* Before a layer's first hand-off nobody from that layer is on call.
* Later layers override earlier ones where they have someone; overrides override every layer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from maintwatch.configload import StrictModel
from maintwatch.durations import parse_duration

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_ALL_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NAME = r"^[A-Za-z0-9_.@-]+$"
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
MIN_ROTATION = 3600.0


def parse_clock(value: Any) -> Any:
    """Parse a wall-clock time written `HH:MM` (24-hour)."""
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        # YAML 1.1 reads an unquoted 09:30 as the sexagesimal integer 570.
        return time(value // 60, value % 60)
    match = _CLOCK.match(str(value))
    if match is None:
        raise ValueError(f"expected a time of day HH:MM (00:00-23:59), got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def check_timezone(name: str) -> str:
    """Return an IANA time zone name unchanged, or raise naming it."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


Clock = Annotated[time, BeforeValidator(parse_clock)]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]


def require_aware(at: datetime) -> datetime:
    """Return `at` in UTC; naive instants are a programming error."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"expected a time zone-aware datetime, got {at.isoformat()}")
    # Aware datetimes sharing one ZoneInfo compare and subtract by wall time, ignoring fold and
    # DST; in UTC every comparison and difference is between instants.
    return at.astimezone(UTC)


def _wall(instant: datetime, tz: ZoneInfo) -> datetime:
    # Through UTC: astimezone() to the instant's own tzinfo would return it unnormalised.
    return instant.astimezone(UTC).astimezone(tz).replace(tzinfo=None, fold=0)


def localize(naive: datetime, tz: ZoneInfo) -> datetime:
    """Return the instant (in UTC) of a local wall time: first occurrence; end of a DST gap."""
    first = naive.replace(tzinfo=tz, fold=0)
    if _wall(first, tz) == naive:
        return first.astimezone(UTC)
    # In a gap, fold=0 applies the offset from before the change and fold=1 the one after
    # (PEP 495), so the change lies between them: bisect for the first instant past `naive`.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first.astimezone(UTC)
    if low > high:
        low, high = high, low
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if _wall(middle, tz) > naive:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def window(day: date, start: time, end: time, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the instants of a daily window starting on `day`; end <= start runs overnight."""
    end_day = day if end > start else day + timedelta(days=1)
    return (
        localize(datetime.combine(day, start), tz),
        localize(datetime.combine(end_day, end), tz),
    )


def _rotation(value: Any) -> Any:
    if value == "daily":
        return 86400.0
    if value == "weekly":
        return 7 * 86400.0
    seconds = parse_duration(value) if isinstance(value, str) else value
    number = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    if number and (seconds < MIN_ROTATION or seconds % 60):
        raise ValueError("rotation must be whole minutes and at least 1h")
    return seconds


Rotation = Annotated[float, BeforeValidator(_rotation)]


class Restriction(StrictModel):
    """A daily window (on the listed days) outside which a layer has nobody on call."""

    days: list[Weekday] = Field(default_factory=lambda: list(_ALL_DAYS), min_length=1)
    from_: Clock = Field(default=time(0), alias="from")
    to: Clock = time(0)


class LayerConfig(StrictModel):
    """One rotation: participants take turns, handing off at a local wall time."""

    name: str = ""
    rotation: Rotation
    handoff: Clock = time(9, 0)
    start: date
    participants: list[Annotated[str, Field(pattern=NAME)]] = Field(min_length=1)
    restrictions: list[Restriction] = Field(default_factory=list)


class OverrideConfig(StrictModel):
    """Someone covering a dated span; a time without offset is in the schedule's zone."""

    person: str = Field(pattern=NAME)
    start: datetime
    end: datetime


class ScheduleConfig(StrictModel):
    """A named schedule: layers in order (later ones win) plus overrides."""

    name: str = Field(min_length=1, pattern=NAME)
    timezone: TimeZoneName = "UTC"
    layers: list[LayerConfig] = Field(min_length=1)
    overrides: list[OverrideConfig] = Field(default_factory=list)

    @property
    def tz(self) -> ZoneInfo:
        """Return the schedule's time zone."""
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _overrides_ordered(self) -> ScheduleConfig:
        for index, item in enumerate(self.overrides):
            start, end = override_span(item, self.tz)
            if end <= start:
                raise ValueError(f"overrides[{index}]: end must be after start")
        return self


@dataclass(frozen=True)
class Shift:
    """Who is on call from `start` (inclusive) to `end` (exclusive); () means nobody."""

    start: datetime
    end: datetime
    people: tuple[str, ...]


def _instant(value: datetime, tz: ZoneInfo) -> datetime:
    return require_aware(value) if value.tzinfo is not None else localize(value, tz)


def override_span(item: OverrideConfig, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return an override's start and end instants."""
    return _instant(item.start, tz), _instant(item.end, tz)


def handoff_at(layer: LayerConfig, tz: ZoneInfo, index: int) -> datetime:
    """Return the instant of the layer's `index`-th hand-off (0: the rotation's start)."""
    naive = datetime.combine(layer.start, layer.handoff) + index * timedelta(seconds=layer.rotation)
    return localize(naive, tz)


def shift_index(layer: LayerConfig, tz: ZoneInfo, at: datetime) -> int | None:
    """Return k such that hand-off k <= at < hand-off k+1; None before the first hand-off."""
    first = handoff_at(layer, tz, 0)
    if at < first:
        return None
    # Wall-clock steps drift from elapsed time only by DST offsets: the estimate is close.
    index = int((at - first) / timedelta(seconds=layer.rotation))
    while handoff_at(layer, tz, index + 1) <= at:
        index += 1
    while index > 0 and handoff_at(layer, tz, index) > at:
        index -= 1
    return index


def _restriction_allows(layer: LayerConfig, tz: ZoneInfo, at: datetime) -> bool:
    if not layer.restrictions:
        return True
    today = at.astimezone(tz).date()
    # A window lasts at most a day, so only windows starting today or yesterday can cover `at`.
    for day in (today - timedelta(days=1), today):
        for rule in layer.restrictions:
            if WEEKDAYS[day.weekday()] in rule.days:
                start, end = window(day, rule.from_, rule.to, tz)
                if start <= at < end:
                    return True
    return False


def layer_on_call(layer: LayerConfig, tz: ZoneInfo, at: datetime) -> str | None:
    """Return the layer's participant on call at `at`, or None."""
    at = require_aware(at)
    index = shift_index(layer, tz, at)
    if index is None or not _restriction_allows(layer, tz, at):
        return None
    return layer.participants[index % len(layer.participants)]


def on_call(schedule: ScheduleConfig, at: datetime) -> list[str]:
    """Return the person ids on call at `at`: overrides, else the last layer with someone."""
    at = require_aware(at)
    tz = schedule.tz
    covering = []
    for item in schedule.overrides:
        start, end = override_span(item, tz)
        if start <= at < end and item.person not in covering:
            covering.append(item.person)
    if covering:
        return covering
    for layer in reversed(schedule.layers):
        person = layer_on_call(layer, tz, at)
        if person is not None:
            return [person]
    return []


def _layer_changes(
    layer: LayerConfig, tz: ZoneInfo, start: datetime, end: datetime
) -> Iterator[datetime]:
    index = shift_index(layer, tz, start)
    index = 0 if index is None else index + 1
    while (instant := handoff_at(layer, tz, index)) < end:
        yield instant
        index += 1
    day = start.astimezone(tz).date() - timedelta(days=1)
    while day <= end.astimezone(tz).date():
        for rule in layer.restrictions:
            if WEEKDAYS[day.weekday()] in rule.days:
                yield from window(day, rule.from_, rule.to, tz)
        day += timedelta(days=1)


def _changes(schedule: ScheduleConfig, start: datetime, end: datetime) -> list[datetime]:
    """Return every instant in (start, end) where who is on call may change."""
    tz = schedule.tz
    points: set[datetime] = set()
    for layer in schedule.layers:
        points.update(_layer_changes(layer, tz, start, end))
    for item in schedule.overrides:
        points.update(override_span(item, tz))
    return sorted(p for p in points if start < p < end)


def shifts(schedule: ScheduleConfig, start: datetime, end: datetime) -> list[Shift]:
    """Return the shifts tiling [start, end): consecutive, non-overlapping, merged when equal."""
    start, end = require_aware(start), require_aware(end)
    if end <= start:
        return []
    out: list[Shift] = []
    edges = [start, *_changes(schedule, start, end), end]
    for begin, finish in pairwise(edges):
        people = tuple(on_call(schedule, begin))
        if out and out[-1].people == people:
            out[-1] = Shift(out[-1].start, finish, people)
        else:
            out.append(Shift(begin, finish, people))
    return out


def schedule_reference_problems(schedules: Sequence[ScheduleConfig], people: set[str]) -> list[str]:
    """Return `path: message` for every unknown person (duplicate names: receiver.config)."""
    out: list[str] = []
    for s_index, schedule in enumerate(schedules):
        path = f"schedules[{s_index}]"
        for l_index, layer in enumerate(schedule.layers):
            out += [
                f"{path}.layers[{l_index}].participants[{i}]: unknown person {pid!r}"
                for i, pid in enumerate(layer.participants)
                if pid not in people
            ]
        out += [
            f"{path}.overrides[{i}].person: unknown person {o.person!r}"
            for i, o in enumerate(schedule.overrides)
            if o.person not in people
        ]
    return out
