"""What one graph draws, whatever draws it (inline SVG on the page, PNG in a mail)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Points = Sequence[tuple[float, float]]  # (epoch seconds, value); NaN for no value


@dataclass(frozen=True)
class Curves:
    """The window, the alert's series, its threshold (maybe none) and when it fired."""

    title: str
    window: tuple[float, float]
    value: Points
    threshold: Points
    firing: tuple[float, float]
