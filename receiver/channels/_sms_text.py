"""SMS text fitting: detect GSM-7 or UCS-2 and keep a message within N segments."""

from __future__ import annotations

# GSM 03.38 default alphabet and the extension table (whose characters take two septets).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")

# (single-segment capacity, per-segment capacity when concatenated), in septets / UTF-16 units.
_CAPACITY = {"GSM-7": (160, 153), "UCS-2": (70, 67)}
ELLIPSIS = "..."  # three dots, not "…": that character alone would force UCS-2


def encoding(text: str) -> str:
    """Return `GSM-7` when every character is in the GSM alphabet, else `UCS-2`."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        return "GSM-7"
    return "UCS-2"


def units(text: str) -> int:
    """Return the message length in septets (GSM-7) or UTF-16 code units (UCS-2)."""
    if encoding(text) == "GSM-7":
        return sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """Return how many SMS segments `text` takes."""
    single, each = _CAPACITY[encoding(text)]
    length = units(text)
    if length <= single:
        return 1
    return -(-length // each)


def _truncate(head: str, tail: str, max_segments: int) -> str:
    """Return the longest prefix of `head` (+ ellipsis) that fits together with `tail`."""

    def candidate(n: int) -> str:
        return head[:n].rstrip() + ELLIPSIS + tail

    low, high = 0, len(head)
    while low < high:  # binary search for the longest fitting prefix length
        mid = (low + high + 1) // 2
        if segments(candidate(mid)) <= max_segments:
            low = mid
        else:
            high = mid - 1
    return candidate(low)


def fit(head: str, hint: str = "", link: str = "", max_segments: int = 2) -> str:
    """Join head, hint and link, dropping the link and then shortening the head to fit."""
    head = " ".join(head.split())  # newlines and runs of spaces cost segments and say nothing
    tail = f" {hint}" if hint else ""
    with_link = f"{head}{tail} {link}" if link else ""
    if with_link and segments(with_link) <= max_segments:
        return with_link
    if segments(head + tail) <= max_segments:
        return head + tail
    return _truncate(head, tail, max_segments)
