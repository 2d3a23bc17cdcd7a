"""Render a schedule's shifts as an iCalendar feed (RFC 5545), one event per shift (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from receiver.oncall.schedules import Shift

PRODID = "-//maintwatch//on-call schedules//EN"


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _escape(text: str) -> str:
    """Escape a TEXT value (RFC 5545 §3.3.11)."""
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """Fold a content line at 75 octets, continuing with CRLF and a space (§3.1)."""
    out: list[str] = []
    current = b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode())
            current = b""
        current += encoded
    out.append(current.decode())
    return "\r\n ".join(out)


def render(schedule: str, shifts: Sequence[Shift], names: Mapping[str, str], now: datetime) -> str:
    """Return the calendar text; shifts with nobody on call are left out."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{PRODID}", "CALSCALE:GREGORIAN"]
    lines.append(f"X-WR-CALNAME:{_escape(f'On call: {schedule}')}")
    for shift in shifts:
        if not shift.people:
            continue
        who = ", ".join(names.get(pid, pid) for pid in shift.people)
        lines += [
            "BEGIN:VEVENT",
            # Stable per (schedule, start, people): a re-fetch updates rather than duplicates.
            f"UID:{_escape(schedule)}-{_stamp(shift.start)}-{'+'.join(shift.people)}@maintwatch",
            f"DTSTAMP:{_stamp(now)}",
            f"DTSTART:{_stamp(shift.start)}",
            f"DTEND:{_stamp(shift.end)}",
            f"SUMMARY:{_escape(f'On call ({schedule}): {who}')}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
