"""Split an alert expression `value > 0.8` into the value it compares and the threshold (pure).

The pictures plot that value, and `--suggest` replays it against other thresholds. Only an
expression whose last step is one comparison with a number splits; `a > b and c` does not.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from rules.lint.promql import PromQLError, spans

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}
_SET_OPS = {"and", "or", "unless"}


@dataclass(frozen=True)
class Comparison:
    """`value op threshold`."""

    value: str
    op: str
    threshold: float

    def holds(self, value: float, threshold: float | None = None) -> bool:
        """Return whether `value op threshold` (this comparison's threshold by default)."""
        return _COMPARE[self.op](value, self.threshold if threshold is None else threshold)


def split(expr: str) -> Comparison | None:
    """Return the expression's value and threshold, or None when it is not `value op number`."""
    try:
        toks = spans(expr)
    except PromQLError:
        return None
    depth, found = 0, []
    for index, (kind, text, _) in enumerate(toks):
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
        elif depth == 0 and kind == "ident" and text in _SET_OPS | {"bool"}:
            return None
        elif depth == 0 and text in _COMPARE:
            found.append(index)
    if len(found) != 1 or found[0] != len(toks) - 2 or toks[-1][0] != "number":
        return None
    try:
        threshold = float(toks[-1][1])
    except ValueError:
        return None
    value = expr[: toks[found[0]][2]].strip()
    return Comparison(value, toks[found[0]][1], threshold)
