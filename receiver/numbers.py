"""Parse numbers from request text (ids, timestamps, Retry-After) without surprises."""

from __future__ import annotations

MAX_DIGITS = 18  # fits a signed 64-bit integer, the widest id the stores hold


def parse_uint(text: str, max_digits: int = MAX_DIGITS) -> int | None:
    """Return a non-negative integer written in ASCII digits, or None.

    `str.isdigit()` alone accepts "²" and other Unicode digits that `int()` rejects, and an
    unbounded length overflows the database drivers; both used to surface as 500s.
    """
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
