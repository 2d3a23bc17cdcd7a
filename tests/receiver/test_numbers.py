"""Numbers parsed from request text never raise and never overflow the stores."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from receiver.numbers import parse_uint


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        ("0", 0),
        ("", None),
        ("²", None),
        ("١٢", None),
        ("-1", None),
        (" 1", None),
        ("9" * 18, int("9" * 18)),
        ("9" * 19, None),
        ("1e3", None),
    ],
)
def test_parse_uint(text: str, expected: int | None) -> None:
    assert parse_uint(text) == expected


@given(st.text(max_size=30))
def test_never_raises_and_fits_64_bits(text: str) -> None:
    value = parse_uint(text)
    assert value is None or 0 <= value < 2**63
