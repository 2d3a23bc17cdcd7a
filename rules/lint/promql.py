"""Find the vector selectors and grouping labels of a PromQL expression (pure).

Not a full parser: a tokenizer that knows where PromQL puts metric names, label matchers,
label lists (`by`, `without`, `on`, `ignoring`, `group_left`, `group_right`) and durations,
which is all the lint needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>0x[0-9a-fA-F]+
      |(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?(?:\d+(?:ms|[smhdwy]))*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<matchop>=~|!~|!=|==|>=|<=|=)
  | (?P<punct>[(){}\[\],@<>+\-*/%^])
    """,
    re.VERBOSE,
)
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
}  # fmt: skip
_KEYWORDS = _LABEL_LISTS | {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}


class PromQLError(ValueError):
    """The expression holds a character the tokenizer does not know."""


@dataclass(frozen=True)
class Matcher:
    """One label matcher: `name op "value"`."""

    name: str
    op: str
    value: str

    def accepts_empty(self) -> bool:
        """Return whether a series without this label would still match."""
        if self.op in ("=", "=~"):
            return self.value == "" or (
                self.op == "=~" and re.fullmatch(self.value, "") is not None
            )
        if self.op == "!=":
            return self.value != ""
        return re.fullmatch(self.value, "") is None


@dataclass(frozen=True)
class Selector:
    """A vector selector: metric name ('' when only matchers) and its matchers, as written."""

    name: str
    matchers: tuple[Matcher, ...]
    text: str


@dataclass(frozen=True)
class Parsed:
    """What the lint needs from an expression."""

    selectors: tuple[Selector, ...]
    grouping_labels: frozenset[str]


def spans(expr: str) -> list[tuple[str, str, int]]:
    """Split an expression into (kind, text, offset) tokens, without spaces."""
    out, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise PromQLError(f"unexpected {expr[pos]!r} at character {pos + 1}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group(), pos))
        pos = match.end()
    return out


def tokens(expr: str) -> list[tuple[str, str]]:
    """Split an expression into (kind, text) tokens, without spaces."""
    return [(kind, text) for kind, text, _ in spans(expr)]


def _unquote(text: str) -> str:
    body = text[1:-1]
    return body if text[0] == "`" else bytes(body, "utf-8").decode("unicode_escape")


def _matchers(toks: list[tuple[str, str]], i: int) -> tuple[tuple[Matcher, ...], int]:
    """Parse `{a="b", …}` starting at toks[i] == '{'; return matchers and the index after '}'."""
    found, i = [], i + 1
    while toks[i][1] != "}":
        if toks[i][1] == ",":
            i += 1
            continue
        name, op, value = toks[i][1], toks[i + 1][1], _unquote(toks[i + 2][1])
        found.append(Matcher(name, op, value))
        i += 3
    return tuple(found), i + 1


def _label_list(toks: list[tuple[str, str]], i: int) -> tuple[list[str], int]:
    """Parse `(a, b)` starting at toks[i] == '('; return the names and the index after ')'."""
    names, i = [], i + 1
    while toks[i][1] != ")":
        if toks[i][0] == "ident":
            names.append(toks[i][1])
        i += 1
    return names, i + 1


def parse(expr: str) -> Parsed:
    """Return the selectors and grouping/matching labels of `expr`; PromQLError when unreadable."""
    toks = [*tokens(expr), ("end", "")]
    selectors: list[Selector] = []
    labels: set[str] = set()
    i = 0
    try:
        while toks[i][0] != "end":
            kind, text = toks[i]
            following = toks[i + 1][1]
            if kind == "ident" and text in _LABEL_LISTS and following == "(":
                names, i = _label_list(toks, i + 1)
                labels.update(names)
            elif kind == "ident" and _not_a_metric(text, following):
                i += 1
            elif kind == "ident" or text == "{":
                selectors.append(_selector(toks, i))
                i = _after_selector(toks, i)
            elif text == "[":
                i = next(j for j in range(i, len(toks)) if toks[j][1] == "]") + 1
            else:
                i += 1
    except (IndexError, StopIteration):
        raise PromQLError("unbalanced brackets or braces") from None
    return Parsed(tuple(selectors), frozenset(labels))


def _not_a_metric(text: str, following: str) -> bool:
    """Return whether an identifier is a function, an aggregation or a keyword."""
    if following == "(" or text.lower() in _KEYWORDS:
        return True
    return text in _AGGREGATIONS and following in ("by", "without")


def _selector(toks: list[tuple[str, str]], i: int) -> Selector:
    name = toks[i][1] if toks[i][0] == "ident" else ""
    start = i + 1 if name else i
    matchers: tuple[Matcher, ...] = ()
    end = start
    if toks[start][1] == "{":
        matchers, end = _matchers(toks, start)
    if not name:
        name = next((m.value for m in matchers if m.name == "__name__" and m.op == "="), "")
    text = "".join(t for _, t in toks[i:end]) if end > i else toks[i][1]
    return Selector(name, matchers, text)


def _after_selector(toks: list[tuple[str, str]], i: int) -> int:
    start = i + 1 if toks[i][0] == "ident" else i
    if toks[start][1] == "{":
        return _matchers(toks, start)[1]
    return start
