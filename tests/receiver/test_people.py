"""People: contact validation, channel preferences, quiet hours across DST, target resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from maintwatch.configload import ConfigError
from receiver.config import load_config_text
from receiver.oncall.people import Directory, PersonConfig, quiet_until
from receiver.oncall.schedules import ScheduleConfig, localize
from tests.receiver._helpers import open_webhook

BERLIN = ZoneInfo("Europe/Berlin")


def person(**fields: object) -> PersonConfig:
    """Return a validated person."""
    return PersonConfig.model_validate({"id": "ann", "name": "Ann", **fields})


def at_berlin(*parts: int) -> datetime:
    """Return the instant of a Berlin wall time."""
    return localize(datetime(*parts), BERLIN)  # type: ignore[arg-type]


def test_a_full_person_validates() -> None:
    ann = person(
        email="ann@example.org",
        phone="+4915112345678",
        chat="@ann",
        timezone="Europe/Berlin",
        channels={"critical": ["sms", "email"], "warning": ["email"]},
        quiet_hours="22:00-07:00",
    )
    assert ann.preferred("critical") == ("sms", "email")
    assert ann.preferred("info") == ()
    assert ann.quiet_hours is not None


def problems(text: str) -> list[str]:
    """Return the problems `load_config_text` reports."""
    with pytest.raises(ConfigError) as caught:
        load_config_text(open_webhook(text), "p.yml")
    return caught.value.problems


def test_bad_contact_details_are_reported_with_their_location() -> None:
    text = (
        "people:\n"
        "  - {id: ann, name: Ann, phone: '015112345678', email: ann-at-example,"
        " timezone: Europe/Springfield, quiet_hours: '22:00'}\n"
        "  - {id: bob, name: Bob, channels: {urgent: [sms]}, quiet_hours: '07:00-07:00'}\n"
    )
    assert problems(text) == [
        "p.yml: people[0].email: email 'ann-at-example' is not an address like name@example.org",
        "p.yml: people[0].phone: phone '015112345678' is not in E.164 form, e.g. +4915112345678",
        "p.yml: people[0].timezone: unknown IANA time zone 'Europe/Springfield'",
        "p.yml: people[0].quiet_hours: expected quiet hours as HH:MM-HH:MM, e.g. 22:00-07:00, "
        "got '22:00'",
        "p.yml: people[1].channels.urgent: this key: expected one of: critical, warning, info,"
        " got 'urgent'",
        "p.yml: people[1].quiet_hours: quiet hours must not start and end at the same time",
    ]


def test_preferred_channels_must_be_configured() -> None:
    text = (
        "channels: [{name: out, type: console}]\n"
        "people: [{id: ann, name: Ann, channels: {critical: [out, sms]}}]\n"
    )
    assert problems(text) == ["p.yml: people[0].channels.critical[1]: unknown channel 'sms'"]


def test_quiet_hours_overnight_in_the_persons_zone() -> None:
    ann = person(timezone="Europe/Berlin", quiet_hours="22:00-07:00")
    assert quiet_until(ann, at_berlin(2026, 6, 1, 21, 59)) is None
    assert quiet_until(ann, at_berlin(2026, 6, 1, 22, 0)) == at_berlin(2026, 6, 2, 7, 0)
    assert quiet_until(ann, at_berlin(2026, 6, 2, 6, 59)) == at_berlin(2026, 6, 2, 7, 0)
    assert quiet_until(ann, at_berlin(2026, 6, 2, 7, 0)) is None
    assert quiet_until(person(), at_berlin(2026, 6, 2, 3, 0)) is None


def test_quiet_hours_on_dst_nights_end_at_local_wall_time() -> None:
    ann = person(timezone="Europe/Berlin", quiet_hours="22:00-07:00")
    # Spring forward: the night is 8 hours long, and ends at 07:00 CEST (05:00 UTC).
    spring = quiet_until(ann, datetime(2026, 3, 29, 0, 30, tzinfo=UTC))
    assert spring == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)
    # Fall back: 10 hours, ending at 07:00 CET (06:00 UTC).
    autumn = quiet_until(ann, datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    assert autumn == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)
    # Quiet hours ending inside the gap end at the first valid instant (03:00 CEST).
    early = person(timezone="Europe/Berlin", quiet_hours="01:00-02:30")
    assert quiet_until(early, datetime(2026, 3, 29, 0, 30, tzinfo=UTC)) == datetime(
        2026, 3, 29, 1, 0, tzinfo=UTC
    )


def test_directory_resolves_people_and_schedules_at_an_instant() -> None:
    rota = ScheduleConfig.model_validate(
        {
            "name": "primary",
            "timezone": "Europe/Berlin",
            "layers": [
                {"rotation": "daily", "start": "2026-03-01", "participants": ["ann", "bob"]}
            ],
        }
    )
    directory = Directory([person(), person(id="bob", name="Bob")], [rota])
    assert [p.id for p in directory.resolve("person:ann", at_berlin(2026, 3, 1, 8))] == ["ann"]
    assert [p.id for p in directory.resolve("schedule:primary", at_berlin(2026, 3, 1, 8))] == []
    assert [p.id for p in directory.resolve("schedule:primary", at_berlin(2026, 3, 1, 9))] == [
        "ann"
    ]
    assert [p.id for p in directory.resolve("schedule:primary", at_berlin(2026, 3, 2, 9))] == [
        "bob"
    ]
    assert directory.person("ghost").name == "ghost"
    with pytest.raises(ValueError, match="unknown schedule 'nope'"):
        directory.resolve("schedule:nope", at_berlin(2026, 3, 1, 9))
    with pytest.raises(ValueError, match="expected person:<id> or schedule:<name>"):
        directory.resolve("channel:ops", at_berlin(2026, 3, 1, 9))
