"""People who can be paged: contact details, channel preferences, quiet hours (pure).

Quiet hours are a daily window in the person's own time zone (`22:00-07:00` runs overnight).
Notifications about non-critical incidents that fall inside them wait until they end.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BeforeValidator, Field

from maintwatch.configload import StrictModel
from receiver.oncall.schedules import (
    NAME,
    ScheduleConfig,
    TimeZoneName,
    localize,
    on_call,
    parse_clock,
    require_aware,
    shifts,
    window,
)

Severity = Literal["critical", "warning", "info"]
HORIZON = timedelta(days=90)  # how far ahead "on call until" looks
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _phone(value: Any) -> Any:
    if isinstance(value, str) and not E164.match(value):
        raise ValueError(f"phone {value!r} is not in E.164 form, e.g. +4915112345678")
    return value


def _email(value: Any) -> Any:
    if isinstance(value, str) and not EMAIL.match(value):
        raise ValueError(f"email {value!r} is not an address like name@example.org")
    return value


def _quiet_hours(value: Any) -> Any:
    if not isinstance(value, str) or value.count("-") != 1:
        raise ValueError(f"expected quiet hours as HH:MM-HH:MM, e.g. 22:00-07:00, got {value!r}")
    start, end = (parse_clock(part.strip()) for part in value.split("-"))
    if start == end:
        raise ValueError("quiet hours must not start and end at the same time")
    return (start, end)


class PersonConfig(StrictModel):
    """Someone who can be paged."""

    id: str = Field(min_length=1, pattern=NAME)
    name: str
    email: Annotated[str | None, BeforeValidator(_email)] = None
    phone: Annotated[str | None, BeforeValidator(_phone)] = None
    chat: str | None = None
    timezone: TimeZoneName = "UTC"
    channels: dict[Severity, list[str]] = Field(default_factory=dict)
    quiet_hours: Annotated[tuple[time, time] | None, BeforeValidator(_quiet_hours)] = None

    def preferred(self, severity: str) -> tuple[str, ...]:
        """Return the channel names this person wants for a severity (may be empty)."""
        return next((tuple(names) for key, names in self.channels.items() if key == severity), ())


def quiet_until(person: PersonConfig, at: datetime) -> datetime | None:
    """Return when the person's quiet hours end if `at` falls inside them, else None."""
    if person.quiet_hours is None:
        return None
    tz = ZoneInfo(person.timezone)
    at = require_aware(at)
    today = at.astimezone(tz).date()
    start, end = person.quiet_hours
    for day in (today - timedelta(days=1), today):
        begin, finish = window(day, start, end, tz)
        if begin <= at < finish:
            return finish
    return None


class Directory:
    """Resolve `person:x` and `schedule:y` targets to people, at an instant."""

    def __init__(
        self, people: Sequence[PersonConfig], schedules: Sequence[ScheduleConfig] = ()
    ) -> None:
        self.people: Mapping[str, PersonConfig] = {p.id: p for p in people}
        self.schedules: Mapping[str, ScheduleConfig] = {s.name: s for s in schedules}

    def person(self, person_id: str) -> PersonConfig:
        """Return a person; a placeholder with just the id when the id is unknown."""
        return self.people.get(person_id) or PersonConfig(id=person_id, name=person_id)

    def resolve(self, target: str, at: datetime) -> list[PersonConfig]:
        """Return the people a `person:` or `schedule:` target names at `at`."""
        kind, _, name = target.partition(":")
        if kind == "person":
            return [self.person(name)]
        if kind == "schedule":
            if name not in self.schedules:
                raise ValueError(f"unknown schedule {name!r}")
            return [self.person(pid) for pid in on_call(self.schedules[name], at)]
        raise ValueError(f"target {target!r}: expected person:<id> or schedule:<name>")


@dataclass(frozen=True)
class OnCall:
    """Who is on call on one schedule at an instant, and until when (None: beyond HORIZON)."""

    schedule: str
    timezone: str
    at: datetime
    people: tuple[PersonConfig, ...]
    until: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Return the API's JSON form, times in the schedule's zone."""
        tz = ZoneInfo(self.timezone)
        return {
            "schedule": self.schedule,
            "timezone": self.timezone,
            "at": self.at.astimezone(tz).isoformat(),
            "people": [{"id": p.id, "name": p.name} for p in self.people],
            "until": None if self.until is None else self.until.astimezone(tz).isoformat(),
        }


def parse_instant(text: str, tz: ZoneInfo) -> datetime:
    """Parse ISO 8601; a time without offset is wall time in `tz` (a DST gap: its end)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"expected an ISO 8601 time like 2026-03-29T02:30, got {text!r}") from None
    return require_aware(value) if value.tzinfo is not None else localize(value, tz)


def who_is_on_call(
    directory: Directory, now: datetime, at: str | None = None, schedule: str | None = None
) -> list[OnCall]:
    """Answer "who is on call" for every schedule (or one), at `at` (default: now)."""
    if schedule is not None and schedule not in directory.schedules:
        raise ValueError(f"unknown schedule {schedule!r}")
    out = []
    for name, config in directory.schedules.items():
        if schedule is not None and name != schedule:
            continue
        instant = require_aware(now) if at is None else parse_instant(at, config.tz)
        current = shifts(config, instant, instant + HORIZON)[0]
        until = current.end if current.end < instant + HORIZON else None
        people = tuple(directory.person(pid) for pid in current.people)
        out.append(OnCall(name, config.timezone, instant, people, until))
    return out


def people_reference_problems(people: Sequence[PersonConfig], channels: set[str]) -> list[str]:
    """Return `path: message` for every preferred channel that is not configured."""
    return [
        f"people[{p_index}].channels.{severity}[{c_index}]: unknown channel {name!r}"
        for p_index, person in enumerate(people)
        for severity, names in person.channels.items()
        for c_index, name in enumerate(names)
        if name not in channels
    ]
