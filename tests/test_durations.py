"""Duration parsing and formatting."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maintwatch.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("26h", 93600),
        ("30d", 2592000),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("1w", 604800),
        ("1.5h", 5400),
    ],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["26x", "", "5", "m5", "5m ago", "-5m", "5 m"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@given(st.integers(min_value=1, max_value=10**8))
def test_format_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.text(max_size=20))
def test_parse_never_crashes_unexpectedly(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert parse_duration(text) >= 0
