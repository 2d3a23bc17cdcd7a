"""Split an alert's PromQL into what to draw: the measured side and its threshold (pure).

`(time() - x) > 2 * max_age and on (backup) files > 0` draws `(time() - x)` against
`2 * max_age`: the first clause of a top-level `and`/`or`/`unless`, split at its top-level
comparison. No comparison: the whole expression, no threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_SET_OPERATOR = re.compile(r"\s(and|or|unless)\s", re.IGNORECASE)
_MODIFIERS = re.compile(
    r"^(bool\s+)?((on|ignoring)\s*\([^)]*\)\s*)?((group_left|group_right)\s*(\([^)]*\))?\s*)?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Plot:
    """What one graph queries: the measured expression and, if the rule has one, its threshold."""

    value: str
    threshold: str = ""
    operator: str = ""


@dataclass(frozen=True)
class Source:
    """A Prometheus base URL and an expression, read from an alert's `generatorURL`."""

    base: str
    expr: str


def source(generator_url: str) -> Source | None:
    """Return the Prometheus base URL and `g0.expr` of a generatorURL, or None."""
    parts = urlsplit(generator_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    expr = parse_qs(parts.query).get("g0.expr", [""])[0].strip()
    if not expr:
        return None
    path = parts.path.removesuffix("/graph").removesuffix("/")
    return Source(urlunsplit((parts.scheme, parts.netloc, path, "", "")), expr)


def _top_level(expr: str) -> list[int]:
    """Return a depth per character: 0 outside (), [], {} and string literals."""
    depth, quote, out = 0, "", []
    for ch in expr:
        if quote:
            out.append(1)
            quote = "" if ch == quote else quote
            continue
        if ch in "\"'`":
            quote = ch
            out.append(1)
            continue
        depth += ch in "([{"
        out.append(depth)
        depth -= ch in ")]}"
    return out


def _first_clause(expr: str, depth: list[int]) -> str:
    for match in _SET_OPERATOR.finditer(expr):
        if depth[match.start()] == 0:
            return expr[: match.start()].strip()
    return expr.strip()


def plot(expr: str) -> Plot:
    """Return the sides of the first clause's top-level comparison."""
    clause = _first_clause(expr, _top_level(expr))
    depth = _top_level(clause)
    i = 0
    while i < len(clause):
        if depth[i] == 0:
            op = next((c for c in _COMPARISONS if clause.startswith(c, i)), "")
            # `=~` and `!~` only occur inside selectors (depth > 0); skip `=` of those anyway.
            if op and not clause.startswith(("=~", "!~"), i):
                rest = _MODIFIERS.sub("", clause[i + len(op) :].strip(), count=1)
                return Plot(clause[:i].strip(), rest.strip(), op)
        i += 1
    return Plot(clause)
