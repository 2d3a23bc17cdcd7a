"""Draw one alert's graph as a small inline SVG (pure): its value, the threshold, the firing
interval shaded. Inline SVG is markup, not script: the page keeps its strict CSP."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

from receiver.graphs.curves import Curves, Points

W, H = 600, 150
LEFT, RIGHT, TOP, BOTTOM = 52, 8, 8, 20


@dataclass(frozen=True)
class Frame:
    """Where time and value map into the drawing."""

    start: float
    end: float
    low: float
    high: float

    def x(self, t: float) -> float:
        """Return the x of a time."""
        span = self.end - self.start or 1.0
        return LEFT + (t - self.start) / span * (W - LEFT - RIGHT)

    def y(self, v: float) -> float:
        """Return the y of a value."""
        span = self.high - self.low or 1.0
        return TOP + (self.high - v) / span * (H - TOP - BOTTOM)


def number(value: float) -> str:
    """Format an axis value shortly: `0.5`, `1.2k`, `3.6M`."""
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def frame_of(curves: Curves) -> Frame:
    """Return the frame that holds every finite point of the value and the threshold."""
    points = [*curves.value, *curves.threshold]
    values = [v for _, v in points if math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
    return Frame(*curves.window, low - pad, high + pad)


def shade(frame: Frame, firing: tuple[float, float]) -> tuple[float, float]:
    """Return the x range of the firing interval, clipped to the plot."""
    return max(frame.x(firing[0]), LEFT), min(frame.x(firing[1]), W - RIGHT)


def segments(points: Points, frame: Frame) -> list[list[tuple[float, float]]]:
    """Return runs of (x, y); a gap (NaN or a missing step) starts a new run."""
    runs: list[list[tuple[float, float]]] = []
    last_t: float | None = None
    gap = (frame.end - frame.start) / 60
    for t, v in points:
        if not math.isfinite(v):
            last_t = None
            continue
        if last_t is None or t - last_t > gap:
            runs.append([])
        runs[-1].append((frame.x(t), frame.y(v)))
        last_t = t
    return runs


def _path(points: Points, frame: Frame) -> str:
    """Return SVG path data, one `M` per run."""
    return " ".join(
        " ".join(f"{'L' if i else 'M'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(run))
        for run in segments(points, frame)
    )


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


def svg(curves: Curves) -> Markup:
    """Return the graph: the value, the threshold dashed, the firing interval shaded."""
    title, value, threshold = curves.title, curves.value, curves.threshold
    frame = frame_of(curves)
    fx0, fx1 = shade(frame, curves.firing)
    parts = [
        f'<svg class="graph" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" '
        'fill="#fafafa" stroke="#ddd"/>',
    ]
    if fx1 > fx0:
        parts.append(
            f'<rect class="firing" x="{fx0:.1f}" y="{TOP}" width="{fx1 - fx0:.1f}" '
            f'height="{H - TOP - BOTTOM}" fill="#b00020" fill-opacity="0.12"/>'
        )
    if threshold:
        parts.append(
            f'<path class="threshold" d="{_path(threshold, frame)}" fill="none" '
            'stroke="#b00020" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
    parts.append(
        f'<path class="value" d="{_path(value, frame)}" fill="none" stroke="#1565c0" '
        'stroke-width="2"/>'
    )
    text = 'font-size="11" fill="#555" font-family="sans-serif"'
    right = f'text-anchor="end" {text}'
    parts += [
        f'<text x="{LEFT - 4}" y="{TOP + 10}" {right}>{number(frame.high)}</text>',
        f'<text x="{LEFT - 4}" y="{H - BOTTOM}" {right}>{number(frame.low)}</text>',
        f'<text x="{LEFT}" y="{H - 5}" {text}>{_clock(frame.start)}</text>',
        f'<text x="{W - RIGHT}" y="{H - 5}" {right}>{_clock(frame.end)} UTC</text>',
        "</svg>",
    ]
    return Markup("".join(parts))  # noqa: S704 - numbers we formatted, text escaped above
