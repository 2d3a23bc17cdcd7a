"""Keep text from alert labels from reordering what surrounds it (pure).

A label value holding U+202E (right-to-left override) or another bidi control would flip the
rest of a message line, so `ack` links or the alert name could be made to read backwards.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Embeddings, overrides, isolates and marks: every character that changes display order.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# C0/C1 controls other than tab and newline: they draw nothing useful and confuse terminals.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
FSI, PDI = "\u2068", "\u2069"


def isolate(text: str) -> str:
    """Return `text` wrapped in a first-strong isolate when it holds bidi controls."""
    text = _CONTROL.sub("\ufffd", text)
    if not _BIDI.search(text):
        return text
    # PDI closes every embedding and override opened after the matching FSI.
    return f"{FSI}{text}{PDI}"


def isolate_values(values: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of a label or annotation map with each value isolated."""
    return {isolate(k): isolate(v) for k, v in values.items()}
