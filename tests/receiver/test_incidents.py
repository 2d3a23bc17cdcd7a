"""The pure merge rules: ordering, duplicates, partial resolution, re-fire."""

from __future__ import annotations

import json
from typing import Any

from receiver.intake.merge import GroupState, Merge, OpenIncident, merge
from receiver.intake.payload import parse_payload
from tests.receiver._helpers import alert, payload

LATER = "2026-11-22T13:00:00Z"
END = "2026-11-22T12:30:00Z"


def _merge(group: GroupState, body: dict[str, Any]) -> Merge:
    return merge(group, parse_payload(json.dumps(body).encode()), "severity", "warning")


def _apply(group: GroupState, result: Merge, incident_id: int = 1) -> GroupState:
    closed = result.action in ("none", "marks") and group.incident is None
    if result.action == "resolve" or closed:
        return GroupState(result.marks)
    return GroupState(
        result.marks, OpenIncident(incident_id, "triggered", result.severity, result.all_alerts)
    )


def test_open_partial_resolve_then_full_resolve() -> None:
    group = GroupState()
    opened = _merge(group, payload(alert("a"), alert("b", severity="warning")))
    assert opened.action == "open"
    assert opened.severity == "critical"
    group = _apply(group, opened)
    partial = _merge(group, payload(alert("a"), alert("b", "resolved", ends=END)))
    assert partial.action == "refresh"
    group = _apply(group, partial)
    done = _merge(
        group, payload(alert("a", "resolved", ends=END), alert("b", "resolved", ends=END))
    )
    assert done.action == "resolve"


def test_duplicates_and_stale_payloads_change_nothing() -> None:
    group = GroupState()
    group = _apply(group, _merge(group, payload(alert("a"))))
    assert _merge(group, payload(alert("a"))).action == "none"
    group = _apply(group, _merge(group, payload(alert("a", "resolved", ends=END))))
    assert group.incident is None
    # The older firing payload arrives late: same startsAt as the resolution → ignored.
    assert _merge(group, payload(alert("a"))).action == "none"
    # A genuine re-fire has a later startsAt and opens a new incident.
    assert _merge(group, payload(alert("a", starts=LATER))).action == "open"


def test_resolved_first_then_late_firing_never_opens() -> None:
    group = GroupState()
    first = _merge(group, payload(alert("a", "resolved", ends=END)))
    assert first.action == "marks"
    group = _apply(group, first)
    assert _merge(group, payload(alert("a"))).action == "none"


def test_new_alert_in_open_incident_is_an_update() -> None:
    group = GroupState()
    group = _apply(group, _merge(group, payload(alert("a"))))
    update = _merge(group, payload(alert("a"), alert("b")))
    assert update.action == "update"
    assert update.new_firing == ("b",)
    assert set(update.all_alerts) == {"a", "b"}


def test_info_only_group_has_info_severity() -> None:
    result = _merge(GroupState(), payload(alert("a", severity="info")))
    assert result.action == "open"
    assert result.severity == "info"
