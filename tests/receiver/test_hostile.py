"""Hostile input, property-based: the webhook parser and the matchers never fail unexpectedly."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from receiver.intake.payload import Payload, PayloadError, parse_payload
from receiver.routing.matchers import Matcher, parse_labels, parse_matcher
from tests.receiver._helpers import alert, fixture_bytes, payload

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
JSON_LEAF = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
VALID = payload(alert("a"), alert("b", status="resolved", ends="2026-11-22T13:00:00Z"))


def _mutate(body: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    """Return a copy of `body` with the value at `path` (which exists in VALID) replaced."""
    copy: dict[str, Any] = json.loads(json.dumps(body))
    node: Any = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


PATHS = st.sampled_from(
    [
        ["version"],
        ["groupKey"],
        ["status"],
        ["alerts"],
        ["truncatedAlerts"],
        ["commonLabels"],
        ["alerts", 0],
        ["alerts", 0, "status"],
        ["alerts", 0, "labels"],
        ["alerts", 0, "startsAt"],
        ["alerts", 0, "endsAt"],
        ["alerts", 0, "fingerprint"],
        ["alerts", 1, "labels", "severity"],
    ]
)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_rejected_with_a_reason(body: bytes) -> None:
    try:
        parse_payload(body)
    except PayloadError as exc:
        reason = str(exc)
    else:
        return
    assert reason


@given(PATHS, JSON_VALUE)
@settings(max_examples=300)
def test_mutated_payloads_parse_or_fail_with_the_field_named(
    path: list[str | int], value: Any
) -> None:
    body = _mutate(VALID, path, value)
    try:
        parsed = parse_payload(json.dumps(body).encode())
    except PayloadError as exc:
        reason = str(exc)
        assert reason.startswith(("malformed JSON", "version", "alerts", str(path[0])))
        return
    assert isinstance(parsed, Payload)
    assert parsed.alerts
    assert parsed.version == "4"
    for item in parsed.alerts:
        assert item.fingerprint
        assert item.status in ("firing", "resolved")


@given(st.dictionaries(st.text(max_size=30), st.text(max_size=30), max_size=5))
@example({"\n\x00": ""})  # a control character in the name: the error stays one line
def test_any_label_strings_survive_a_round_trip(labels: dict[str, str]) -> None:
    body = json.dumps(payload({**alert("a"), "labels": labels})).encode()
    if any("\x00" in text for item in labels.items() for text in item):
        # U+0000 is what PostgreSQL cannot store: refused on every store, field named.
        with pytest.raises(PayloadError, match=r"alerts\[0\]\.labels.*NUL"):
            parse_payload(body)
        return
    assert parse_payload(body).alerts[0].labels == labels


def test_real_fixtures_still_parse() -> None:
    for name in ("firing-single.json", "firing-group.json", "resolved.json"):
        assert parse_payload(fixture_bytes(name)).version == "4"


@given(st.text(max_size=60))
def test_matcher_text_parses_or_raises_value_error(text: str) -> None:
    try:
        matcher = parse_matcher(text)
    except ValueError:
        return
    assert isinstance(matcher, Matcher)
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", matcher.name)


@given(NAMES, st.sampled_from(["=", "!=", "=~", "!~"]), st.text(max_size=20))
def test_matcher_round_trips_through_its_text(name: str, op: str, value: str) -> None:
    if op in ("=~", "!~"):
        value = re.escape(value)
    matcher = parse_matcher(f"{name}{op}{json.dumps(value)}")
    assert (matcher.name, matcher.op, matcher.value) == (name, op, value)
    assert parse_matcher(str(matcher)) == matcher


@given(
    NAMES,
    st.text(max_size=12),
    st.dictionaries(NAMES, st.text(max_size=12), max_size=4),
)
def test_operators_agree_with_each_other(name: str, value: str, labels: dict[str, str]) -> None:
    quoted = json.dumps(value)
    equal = parse_matcher(f"{name}={quoted}").matches(labels)
    assert equal == (labels.get(name, "") == value)
    assert parse_matcher(f"{name}!={quoted}").matches(labels) is not equal
    pattern = json.dumps(re.escape(value))
    assert parse_matcher(f"{name}=~{pattern}").matches(labels) is equal  # anchored
    assert parse_matcher(f"{name}!~{pattern}").matches(labels) is not equal


@given(st.text(max_size=80))
def test_label_lists_parse_or_raise_value_error(text: str) -> None:
    try:
        labels = parse_labels(text)
    except ValueError:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
