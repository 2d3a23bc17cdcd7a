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


# Typography that alert text uses and GSM-7 lacks: one such character would make the whole
# message UCS-2 (70 characters a segment instead of 160).
_PLAIN = str.maketrans(
    {
        "×": "x",
        "–": "-",
        "—": "-",
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "…": ELLIPSIS,
        "≥": ">=",
        "≤": "<=",
        "→": "->",
        "\u00a0": " ",
    }
)


def plain(text: str) -> str:
    """Return `text` with typographic characters spelled in GSM-7 where one exists."""
    return text.translate(_PLAIN)


def _cut(head: str, n: int, tail: str) -> str:
    return head[:n].rstrip() + ELLIPSIS + tail


def _longest(head: str, tail: str, max_segments: int) -> int:
    """Return the longest prefix length of `head` that fits (cut, with ellipsis) before `tail`."""
    low, high = 0, len(head)
    while low < high:  # binary search for the longest fitting prefix length
        mid = (low + high + 1) // 2
        if segments(_cut(head, mid, tail)) <= max_segments:
            low = mid
        else:
            high = mid - 1
    return low


def fit(head: str, hint: str = "", link: str = "", max_segments: int = 2, keep: int = 0) -> str:
    """Join head, hint and link within `max_segments`.

    The link stays if it fits beside the whole head, or beside at least `keep` characters of
    it (the rest cut with `...`); otherwise it is dropped and only then the head is shortened.
    The hint always stays.
    """
    head = " ".join(head.split())  # newlines and runs of spaces cost segments and say nothing
    tail = f" {hint}" if hint else ""
    if link:
        with_link = f"{head}{tail} {link}"
        if segments(with_link) <= max_segments:
            return with_link
        kept = _longest(head, f"{tail} {link}", max_segments) if 0 < keep < len(head) else 0
        if kept >= keep > 0:
            return _cut(head, kept, f"{tail} {link}")
    if segments(head + tail) <= max_segments:
        return head + tail
    return _cut(head, _longest(head, tail, max_segments), tail)
