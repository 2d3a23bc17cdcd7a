"""Engine invariants under random event sequences, random delays and stale timer events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.escalation.engine import (
    AckExpired,
    Acknowledged,
    Action,
    AlertsAdded,
    CancelTimer,
    EscalationState,
    Event,
    Notify,
    Opened,
    PolicyConfig,
    Resolved,
    ScheduleTimer,
    TimerDue,
    Unacknowledged,
    step,
)
from receiver.oncall.people import Directory, PersonConfig
from receiver.oncall.schedules import ScheduleConfig

START = datetime(2026, 3, 28, 20, 0, tzinfo=UTC)  # across the Berlin spring-forward night
PEOPLE = [
    PersonConfig.model_validate(
        {
            "id": pid,
            "name": pid,
            "timezone": "Europe/Berlin",
            "quiet_hours": "22:00-07:00",
            "channels": {"critical": ["sms"], "warning": ["mail"]},
        }
    )
    for pid in ("ann", "bob", "cy")
]
ROTA = ScheduleConfig.model_validate(
    {
        "name": "rota",
        "timezone": "Europe/Berlin",
        "layers": [{"rotation": "12h", "start": "2026-03-01", "participants": ["ann", "bob"]}],
    }
)
DIRECTORY = Directory(PEOPLE, [ROTA])
SEVERITIES = st.sampled_from(["info", "warning", "critical"])

policies = st.builds(
    lambda steps, repeat, ack: PolicyConfig.model_validate(
        {"name": "p", "steps": steps, "repeat": repeat, "repeat_after": "20m", "ack_timeout": ack}
    ),
    st.lists(
        st.fixed_dictionaries(
            {
                "after": st.sampled_from(["0s", "5m", "1h"]),
                "notify": st.lists(
                    st.sampled_from(["person:ann", "person:cy", "schedule:rota", "channel:chat"]),
                    min_size=1,
                    max_size=3,
                ),
            }
        ),
        max_size=4,
    ),
    st.integers(0, 2),
    st.sampled_from([None, "30m", "3h"]),
)


def events(version: int) -> st.SearchStrategy[Event]:
    """Draw an event; timer events carry the current version or a stale one."""
    versions = st.sampled_from([version, version - 1, version + 1])
    return st.one_of(
        st.builds(Opened, SEVERITIES, st.just(("route",)), st.sampled_from([(), ("cy",)])),
        st.builds(AlertsAdded, SEVERITIES),
        st.builds(TimerDue, versions),
        st.builds(AckExpired, versions),
        st.builds(Acknowledged, st.sampled_from(["ann", "bob", "api"])),
        st.builds(Unacknowledged, st.sampled_from(["ann", "api"])),
        st.builds(Resolved, st.sampled_from(["", "ann"])),
    )


def check(before: EscalationState, after: EscalationState, actions: list[Action], now: Any) -> None:
    """Assert the invariants of one transition."""
    if after is before:
        assert actions == []
        return
    assert after.version == before.version + 1
    assert EscalationState.from_dict(after.to_dict()) == after
    timers = [a for a in actions if isinstance(a, ScheduleTimer | CancelTimer)]
    if after.next_at is not None:
        assert timers == [ScheduleTimer(after.next_at, after.version)]
        # Due steps run inline, so a new timer is in the future; an overdue one may be carried
        # over by a non-timer event (a late ack must not page first), and fires at once.
        assert after.next_at > now or after.next_at == before.next_at
    else:
        assert timers == ([CancelTimer()] if before.next_at is not None else [])
    if after.status == "acknowledged":
        assert after.acked_by
        assert after.next_at == after.ack_expires_at
    if after.status == "resolved":
        assert after.next_at is None
    for note in (a for a in actions if isinstance(a, Notify)):
        assert set(note.targets) <= set(after.paged) | {after.acked_by}
        if after.severity == "critical":
            assert note.not_before is None  # quiet hours never hold a critical incident
    if after.severity == "info":
        assert not [a for a in actions if isinstance(a, Notify)]


@settings(max_examples=150, deadline=None)
@given(policy=policies, data=st.data())
def test_random_event_sequences_keep_the_invariants(policy: PolicyConfig, data: Any) -> None:
    state, now = EscalationState(), START
    for _ in range(data.draw(st.integers(1, 25))):
        now += timedelta(minutes=data.draw(st.sampled_from([0, 1, 5, 30, 61, 200])))
        event = data.draw(events(state.version))
        if isinstance(event, TimerDue | AckExpired) and state.next_at is not None:
            now = max(now, state.next_at)  # the worker fires a timer once it is due
        after, actions = step(state, event, now, policy, DIRECTORY.resolve)
        check(state, after, actions, now)
        if state.status == "resolved":
            assert after is state  # resolved is final
        state = after
