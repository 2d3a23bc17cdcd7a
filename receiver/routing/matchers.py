"""Alertmanager-style label matchers: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.

Regexes are fully anchored as in Alertmanager (`team=~"ops"` does not match `devops`), and a
missing label matches as the empty string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["=", "!=", "=~", "!~"]

_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Matcher:
    """One label matcher."""

    name: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Return whether the labels satisfy this matcher."""
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self._regex is not None
        hit = self._regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{json.dumps(self.value, ensure_ascii=False)}"


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        if raw[0] == '"':
            value: str = json.loads(raw)  # Alertmanager values use Go/JSON escapes
            return value
        return raw[1:-1]
    if any(c in raw for c in "\"'"):
        raise ValueError(f"unbalanced quotes in matcher value {raw!r}")
    return raw


def parse_matcher(text: str) -> Matcher:
    """Parse `name op value` (value quoted or bare); raise ValueError naming the problem."""
    found = _MATCHER.match(text)
    if found is None:
        raise ValueError(f"invalid matcher {text!r}: expected name=value, !=, =~ or !~")
    name, op, raw = found.groups()
    try:
        value = _unquote(raw)
    except json.JSONDecodeError:
        raise ValueError(f"invalid quoted value in matcher {text!r}") from None
    regex = None
    if op in ("=~", "!~"):
        try:
            regex = re.compile(value)
        except re.error as exc:
            raise ValueError(f"invalid regex in matcher {text!r}: {exc}") from None
    return Matcher(name, op, value, regex)  # type: ignore[arg-type]


def parse_labels(text: str) -> dict[str, str]:
    """Parse `a=1,b=2` (the CLI's --labels) into a dict."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"invalid label {part!r}: expected name=value")
        labels[name.strip()] = _unquote(value.strip())
    return labels
