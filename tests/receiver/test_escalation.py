"""The escalation engine over long fake-clock timelines, with the shipped example policies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from receiver.config import ReceiverBase
from receiver.escalation.engine import (
    AckExpired,
    Acknowledged,
    AlertsAdded,
    CancelTimer,
    EscalationState,
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
from receiver.oncall.schedules import ScheduleConfig, localize
from tests.receiver._escalation_helpers import Run, load_example, pages

BERLIN = ZoneInfo("Europe/Berlin")
T0 = localize(datetime(2026, 3, 10, 10, 0), BERLIN)  # a Tuesday: dmitri's week on dev-team
MIN = timedelta(minutes=1)


@pytest.fixture
def seed003() -> ReceiverBase:
    """Return the shipped seed 003 example config."""
    return load_example("policies-seed003-levels.yml")


@pytest.fixture
def seed001() -> ReceiverBase:
    """Return the shipped seed 001 example config."""
    return load_example("policies-seed001-tiers.yml")


def start(config: ReceiverBase, now: datetime = T0, policy: int = 0) -> Run:
    """Return a run of the config's policy at `now`."""
    return Run(config.policies[policy], Directory(config.people, config.schedules), now)


def simple(**policy: Any) -> Run:
    """Return a run of an inline policy over three people and a daily 09:00 Berlin rota."""
    people = [
        PersonConfig.model_validate(
            {
                "id": "ann",
                "name": "Ann",
                "timezone": "Europe/Berlin",
                "channels": {"critical": ["sms"], "warning": ["mail"]},
                "quiet_hours": "22:00-07:00",
            }
        ),
        PersonConfig(id="bob", name="Bob"),
        PersonConfig(id="cy", name="Cy"),
    ]
    rota = ScheduleConfig.model_validate(
        {
            "name": "rota",
            "timezone": "Europe/Berlin",
            "layers": [
                {"rotation": "daily", "start": "2026-03-01", "participants": ["ann", "bob"]}
            ],
        }
    )
    config = PolicyConfig.model_validate({"name": "p", **policy})
    return Run(config, Directory(people, [rota]), T0)


def test_seed003_levels_page_one_after_another_then_repeat(seed003: ReceiverBase) -> None:
    run = start(seed003)
    run.feed(Opened("critical", channels=("ops-slack",)))
    run.run_until(T0 + timedelta(days=2))
    assert pages(run.sent, T0) == [
        (0, 0, "ops-slack"),  # the route's channel, at once
        (0, 1, "dmitri"),  # level 1: dev-team on-call, at once
        (60, 2, "tlee"),  # level 2 after 1 h
        (90, 3, "emma"),  # level 3 after 30 min more
        (105, 4, "cto"),  # level 4 15 min later
        (135, 1, "dmitri"),  # repeat: 1, after repeat_after 30 min
        (195, 2, "tlee"),
        (225, 3, "emma"),
        (240, 4, "cto"),
    ]
    assert run.timer is None
    assert (run.state.status, run.state.step, run.state.loop) == ("triggered", 4, 1)
    vias = {n.targets: n.via for _, n in run.sent if n.targets}
    assert vias == {
        ("dmitri",): ("sms", "email"),  # his critical preference
        ("tlee",): ("sms",),
        ("emma",): ("sms", "email"),  # the step's via
        ("cto",): ("sms", "email"),
    }


def test_seed003_ack_stops_escalation_and_expiry_resumes_the_current_step(
    seed003: ReceiverBase,
) -> None:
    run = start(seed003)
    run.feed(Opened("critical", channels=("ops-slack",)))
    run.run_until(T0 + 70 * MIN)
    stale = run.timer
    assert stale is not None
    told = run.feed(Acknowledged("tlee"), T0 + 70 * MIN)
    assert [(n.kind, n.targets, n.via, n.by) for n in told if isinstance(n, Notify)] == [
        ("acknowledged", ("dmitri",), ("sms", "email"), "tlee"),
        ("acknowledged", (), ("ops-slack",), "tlee"),
    ]
    assert run.state.ack_expires_at == T0 + 70 * MIN + timedelta(hours=4)
    # The step timer from before the ack is stale: a worker still holding it changes nothing.
    assert step(
        run.state, TimerDue(stale.version), stale.at, run.policy, run.directory.resolve
    ) == (
        run.state,
        [],
    )
    resumed = run.run_until(T0 + 70 * MIN + timedelta(hours=4, minutes=31))
    assert [(int((at - T0) / MIN), n.kind, n.step, n.targets or n.via) for at, n in resumed] == [
        (310, "unacknowledged", 2, ("ops-slack",)),  # tlee is re-paged below, so no notice
        (310, "firing", 2, ("tlee",)),
        (340, "firing", 3, ("emma",)),
    ]


def test_resolve_tells_everyone_paged_and_stops_the_timer(seed003: ReceiverBase) -> None:
    run = start(seed003)
    run.feed(Opened("critical", channels=("ops-slack",)))
    run.run_until(T0 + 95 * MIN)
    actions = run.feed(Resolved("api"), T0 + 96 * MIN)
    assert [(n.kind, n.targets or n.via, n.by) for n in actions if isinstance(n, Notify)] == [
        ("resolved", ("dmitri", "emma"), "api"),  # one action per (via, deferral) group
        ("resolved", ("tlee",), "api"),
        ("resolved", ("ops-slack",), "api"),
    ]
    assert isinstance(actions[-1], CancelTimer)
    assert run.state.status == "resolved"
    for event in (Acknowledged("x"), AlertsAdded("critical"), Resolved(), Opened("critical")):
        assert step(run.state, event, T0 + 97 * MIN, run.policy, run.directory.resolve) == (
            run.state,
            [],
        )


def test_seed001_warning_tells_channels_now_and_pages_after_an_hour(seed001: ReceiverBase) -> None:
    denver = ZoneInfo("America/Denver")
    noon = localize(datetime(2026, 3, 14, 12, 0), denver)  # a Saturday: the daily layer only
    run = start(seed001, noon)
    run.feed(Opened("warning", channels=("admin-mail",)))
    assert pages(run.sent, noon) == [(0, 0, "admin-mail")]
    assert run.timer_at() == noon + timedelta(hours=1)
    sent = run.run_until(noon + timedelta(hours=1, minutes=20))
    assert [(n.step, n.targets, n.via) for _, n in sent] == [
        (1, ("sam",), ("email",)),  # sam's day on the rota; his warning preference
        (2, ("sam", "riley"), ("email",)),
    ]


def test_seed001_warning_acknowledged_in_time_never_pages(seed001: ReceiverBase) -> None:
    run = start(seed001)
    run.feed(Opened("warning", channels=("admin-mail",)))
    run.feed(Acknowledged("sam"), T0 + 30 * MIN)
    assert run.timer_at() == T0 + 150 * MIN
    run.feed(Resolved(), T0 + 50 * MIN)
    assert run.timer is None
    assert [(n.kind, n.targets or n.via) for _, n in run.sent] == [
        ("firing", ("admin-mail",)),
        ("acknowledged", ("admin-mail",)),
        ("resolved", ("admin-mail",)),
    ]


def test_info_never_pages(seed001: ReceiverBase) -> None:
    run = start(seed001)
    assert run.feed(Opened("info", channels=("admin-mail",))) == []
    assert run.feed(AlertsAdded("info"), T0 + MIN) == []
    assert run.feed(Resolved(), T0 + 2 * MIN) == []
    assert run.state.status == "resolved"
    assert run.state.version == 3


def test_warning_upgraded_to_critical_starts_step_one_now() -> None:
    run = simple(steps=[{"notify": ["schedule:rota"]}])
    run.feed(Opened("warning", channels=("ops",)))
    actions = run.feed(AlertsAdded("critical"), T0 + 10 * MIN)
    assert [(n.kind, n.step, n.targets or n.via) for n in actions if isinstance(n, Notify)] == [
        ("updated", 0, ("ops",)),
        ("firing", 1, ("bob",)),
    ]
    assert run.state.severity == "critical"


def test_info_upgraded_to_warning_is_opened_for_real() -> None:
    run = simple(steps=[{"notify": ["person:cy"]}], warning_delay="30m")
    run.feed(Opened("info", channels=("ops",)))
    actions = run.feed(AlertsAdded("warning"), T0 + 10 * MIN)
    assert [a for a in actions if isinstance(a, Notify)] == [Notify("firing", 0, (), ("ops",))]
    assert run.timer_at() == T0 + 40 * MIN


def test_new_alerts_in_an_acknowledged_incident_notify_the_acknowledger() -> None:
    run = simple(steps=[{"notify": ["person:bob", "person:cy"], "via": ["pager"]}])
    run.feed(Opened("critical"))
    run.feed(Acknowledged("cy"), T0 + MIN)
    actions = run.feed(AlertsAdded("critical"), T0 + 2 * MIN)
    assert actions == [Notify("updated", 1, ("cy",), ("pager",))]
    run.feed(Unacknowledged("cy"), T0 + 3 * MIN)
    assert run.state.status == "triggered"
    assert pages(run.sent, T0)[-1] == (3, 1, "bob,cy")  # the current step, paged again
    actions = run.feed(AlertsAdded("critical"), T0 + 4 * MIN)
    assert actions == [Notify("updated", 1, ("bob", "cy"), ("pager",))]


def test_acking_again_renews_quietly_and_a_takeover_is_announced() -> None:
    run = simple(
        steps=[{"notify": ["person:bob", "person:cy"], "via": ["pager"]}], ack_timeout="30m"
    )
    run.feed(Opened("critical"))
    run.feed(Acknowledged("cy"), T0 + MIN)
    again = run.feed(Acknowledged("cy"), T0 + 20 * MIN)
    assert [a for a in again if isinstance(a, Notify)] == []
    assert run.state.ack_expires_at == T0 + 50 * MIN  # renewed from the second ack
    takeover = run.feed(Acknowledged("bob"), T0 + 21 * MIN)
    assert [a for a in takeover if isinstance(a, Notify)] == [
        Notify("acknowledged", 1, ("cy",), ("pager",), by="bob")
    ]


def test_acking_again_without_ack_timeout_changes_nothing() -> None:
    run = simple(steps=[{"notify": ["person:bob"], "via": ["pager"]}])
    run.feed(Opened("critical"))
    run.feed(Acknowledged("bob"), T0 + MIN)
    before = run.state
    assert run.feed(Acknowledged("bob"), T0 + 2 * MIN) == []
    assert run.state is before, "the same state: the store reports changed=false"


def test_channel_targets_and_the_via_fallback_chain() -> None:
    run = simple(
        steps=[
            {"notify": ["person:ann", "person:bob", "channel:ops-chat"]},
            {"after": "5m", "notify": ["person:ann"], "via": ["phone"]},
        ]
    )
    run.feed(Opened("critical", channels=("route-mail",)))
    run.run_until(T0 + 10 * MIN)
    assert [(n.step, n.targets, n.via) for _, n in run.sent] == [
        (0, (), ("route-mail",)),
        (1, ("ann",), ("sms",)),  # her critical preference
        (1, ("bob",), ("route-mail",)),  # no preference: the route's channels
        (1, (), ("ops-chat",)),
        (2, ("ann",), ("phone",)),  # the step's via wins
    ]
    assert run.state.paged == {"ann": ("sms", "phone"), "bob": ("route-mail",)}


def test_schedule_targets_are_resolved_when_the_step_runs() -> None:
    before_handoff = localize(datetime(2026, 3, 10, 8, 30), BERLIN)
    run = simple(
        steps=[{"notify": ["schedule:rota"]}, {"after": "1h", "notify": ["schedule:rota"]}]
    )
    run.now = before_handoff
    run.feed(Opened("critical"))
    run.run_until(before_handoff + 2 * timedelta(hours=1))
    assert pages(run.sent, before_handoff) == [(0, 1, "ann"), (60, 2, "bob")]


def test_quiet_hours_defer_non_critical_pages_on_a_dst_night() -> None:
    # 00:30 UTC on 2026-03-29 is 01:30 CET; quiet hours end at 07:00 CEST, i.e. 05:00 UTC.
    night = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    for severity, expected in (
        ("warning", datetime(2026, 3, 29, 5, 0, tzinfo=UTC)),
        ("critical", None),
    ):
        run = simple(steps=[{"notify": ["person:ann", "person:bob"]}], warning_delay="0s")
        run.now = night
        run.feed(Opened(severity))
        deferred = {n.targets: n.not_before for _, n in run.sent}
        assert deferred == {("ann",): expected, ("bob",): None}


def test_repeat_loops_over_days_then_stops() -> None:
    run = simple(
        steps=[{"notify": ["person:bob"]}, {"after": "1h", "notify": ["person:cy"]}],
        repeat=3,
        repeat_after="6h",
    )
    run.feed(Opened("critical"))
    sent = run.run_until(T0 + timedelta(days=3))
    assert [m for m, _, _ in pages(sent, T0)] == [60, 420, 480, 840, 900, 1260, 1320]
    assert (run.state.loop, run.timer) == (3, None)


def test_escalation_delays_are_elapsed_time_across_a_new_york_dst_change() -> None:
    ny = ZoneInfo("America/New_York")
    opened = localize(datetime(2026, 3, 8, 1, 30), ny)  # EST; at 02:00 clocks jump to 03:00
    run = simple(steps=[{"notify": ["person:bob"]}, {"after": "1h", "notify": ["person:cy"]}])
    run.now = opened
    run.feed(Opened("critical"))
    run.run_until(opened + timedelta(hours=3))
    assert [at.astimezone(ny).strftime("%H:%M %Z") for at, _ in run.sent] == [
        "01:30 EST",
        "03:30 EDT",
    ]


def test_stale_and_early_timer_events_are_ignored() -> None:
    run = simple(steps=[{"notify": ["person:bob"]}, {"after": "1h", "notify": ["person:cy"]}])
    run.feed(Opened("critical"))
    state = run.state
    assert run.timer is not None
    early = step(state, TimerDue(state.version), T0 + 59 * MIN, run.policy, run.directory.resolve)
    old = step(
        state,
        TimerDue(state.version - 1),
        T0 + 2 * timedelta(hours=1),
        run.policy,
        run.directory.resolve,
    )
    wrong = step(
        state,
        AckExpired(state.version),
        T0 + 2 * timedelta(hours=1),
        run.policy,
        run.directory.resolve,
    )
    assert early == old == wrong == (state, [])


def test_every_accepted_event_bumps_the_version_and_retags_the_timer() -> None:
    run = simple(
        steps=[{"notify": ["person:bob"]}, {"after": "1h", "notify": ["person:cy"]}],
        ack_timeout="30m",
    )
    versions = []
    for event, minutes in (
        (Opened("critical"), 0),
        (AlertsAdded("critical"), 1),
        (Acknowledged("bob"), 2),
    ):
        actions = run.feed(event, T0 + minutes * MIN)
        timers = [a for a in actions if isinstance(a, ScheduleTimer)]
        assert timers == [ScheduleTimer(run.state.next_at, run.state.version)]  # type: ignore[arg-type]
        versions.append(run.state.version)
    assert versions == [1, 2, 3]


def test_state_round_trips_through_json(seed003: ReceiverBase) -> None:
    run = start(seed003)
    run.feed(Opened("critical", channels=("ops-slack",)))
    run.run_until(T0 + 70 * MIN)
    run.feed(Acknowledged("tlee"))
    text = json.dumps(run.state.to_dict())
    assert EscalationState.from_dict(json.loads(text)) == run.state


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "snoozed"}, "escalation state: 'snoozed' is not one of pending, triggered"),
        ({"next_at": "2026-03-10T10:00"}, "escalation state: expected a time zone-aware datetime"),
        ({"version": None}, "escalation state: int()"),
    ],
)
def test_bad_stored_state_is_reported(change: dict[str, Any], message: str) -> None:
    data = {**EscalationState().to_dict(), **change}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EscalationState.from_dict(data)


def test_stored_state_missing_a_field_is_reported() -> None:
    data = EscalationState().to_dict()
    data.pop("paged")
    with pytest.raises(ValueError, match="missing field 'paged'"):
        EscalationState.from_dict(data)


def test_policy_config_problems_are_located() -> None:
    from maintwatch.configload import ConfigError
    from receiver.config import load_config_text

    text = (
        "webhook: {auth: none}\n"
        "channels: [{name: out, type: console}]\n"
        "people: [{id: ann, name: Ann}]\n"
        "policies:\n"
        "  - name: p\n"
        "    steps:\n"
        "      - {notify: [person:ann, schedule:nope, channel:gone, team:x], via: [out, sms]}\n"
        "      - {after: soon, notify: []}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "e.yml")
    assert caught.value.problems == [
        "e.yml: policies[0].steps[0].notify[3]: target 'team:x': expected person:<id>, "
        "schedule:<name> or channel:<name>",
        "e.yml: policies[0].steps[1].after: invalid duration 'soon': use a number and a unit "
        "(ms, s, m, h, d, w, y), e.g. 30s, 5m, 26h",
        "e.yml: policies[0].steps[1].notify: must not be empty",
    ]
    with pytest.raises(ConfigError) as caught:
        load_config_text(
            text.replace(", team:x", "").replace(
                "{after: soon, notify: []}", "{notify: [person:ann]}"
            ),
            "e.yml",
        )
    assert caught.value.problems == [
        "e.yml: policies[0].steps[0].notify[1]: unknown schedule 'nope'",
        "e.yml: policies[0].steps[0].notify[2]: unknown channel 'gone'",
        "e.yml: policies[0].steps[0].via[1]: unknown channel 'sms'",
    ]
