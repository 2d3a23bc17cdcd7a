"""The silencer's pure decisions: which silences should exist, and the diff against Alertmanager."""

from __future__ import annotations

from typing import Any

import pytest

from maintwatch.configload import ConfigError
from receiver.config import load_config_text
from receiver.incident_record import AlertRow, IncidentRecord
from receiver.silences.plan import (
    ExistingSilence,
    WantedSilence,
    due_to_resolve,
    format_time,
    missing_since,
    parse_silence,
    parse_time,
    plan,
    silence_body,
    wanted,
)
from tests.receiver._helpers import OPEN_WEBHOOK, open_webhook

DAY = 86400.0
NOW = 1_800_000_000.0


def incident(state: str = "acknowledged", receiver: str = "hook", **alerts: str) -> IncidentRecord:
    return IncidentRecord(
        id=7,
        state=state,
        severity="warning",
        group_labels={},
        common_labels={},
        common_annotations={},
        opened_at=NOW,
        receiver=receiver,
        acked_by="alice",
        alerts=tuple(
            AlertRow(7, fp, status, NOW, None, {"alertname": "Disk", "disk": fp}, {}, "", NOW)
            for fp, status in alerts.items()
        ),
    )


def want(fp: str = "aa01", incident_id: int = 7) -> WantedSilence:
    return WantedSilence(incident_id, fp, (("alertname", "Disk"), ("disk", fp)), "alice")


def have(sid: str, fp: str = "aa01", ends: float = NOW + DAY, labels: Any = ...) -> ExistingSilence:
    exact = (("alertname", "Disk"), ("disk", fp)) if labels is ... else labels
    return ExistingSilence(sid, 7, fp, exact, ends)


def test_only_firing_alerts_of_acknowledged_incidents_are_wanted() -> None:
    assert [w.fingerprint for w in wanted(incident(aa01="firing", bb02="resolved"))] == ["aa01"]
    assert wanted(incident("triggered", aa01="firing")) == []
    assert wanted(incident("resolved", aa01="firing")) == []


def test_receivers_limit_which_alertmanager_incidents_are_silenced() -> None:
    assert wanted(incident(aa01="firing"), ["hook"]) != []
    assert wanted(incident(aa01="firing"), ["other"]) == []


def test_the_watchdog_outage_incident_is_never_silenced() -> None:
    # Its alert is the receiver's own (no Alertmanager fingerprint): silencing its labels would
    # mute the real Watchdog alert.
    assert wanted(incident(**{"watchdog:Watchdog": "firing"})) == []


def test_plan_creates_missing_and_expires_unwanted() -> None:
    result = plan([want("aa01")], [have("s-old", "cc03")], NOW, DAY)
    assert [w.fingerprint for w in result.create] == ["aa01"]
    assert [s.id for s in result.expire] == ["s-old"]
    assert result.renew == []


def test_plan_keeps_one_silence_per_alert_and_expires_duplicates() -> None:
    result = plan([want()], [have("s1", ends=NOW + DAY), have("s2", ends=NOW + DAY - 60)], NOW, DAY)
    assert not result.create
    assert [s.id for s in result.expire] == ["s2"]
    assert not result.renew


def test_plan_extends_a_silence_past_half_its_life() -> None:
    result = plan([want()], [have("s1", ends=NOW + DAY / 2 - 1)], NOW, DAY)
    assert [(old.id, new.fingerprint) for old, new in result.renew] == [("s1", "aa01")]
    assert not plan([want()], [have("s1", ends=NOW + DAY / 2 + 1)], NOW, DAY)


def test_plan_replaces_a_silence_whose_matchers_were_edited() -> None:
    edited = have("s1", labels=None)
    result = plan([want()], [edited], NOW, DAY)
    assert [s.id for s in result.expire] == ["s1"]
    assert [w.fingerprint for w in result.create] == ["aa01"]


def raw(comment: str, created_by: str = "maintwatch-receiver", state: str = "active") -> Any:
    return {
        "id": "3f1c",
        "createdBy": created_by,
        "comment": comment,
        "status": {"state": state},
        "endsAt": "2027-01-15T08:00:00.123Z",
        "matchers": [
            {"name": "disk", "value": "sda", "isRegex": False, "isEqual": True},
            {"name": "alertname", "value": "Disk", "isRegex": False, "isEqual": True},
        ],
    }


def test_parse_silence_recognises_only_our_live_silences() -> None:
    ours = "maintwatch incident #12 alert 0af3: acknowledged by bob"
    found = parse_silence(raw(ours), "maintwatch-receiver")
    assert found is not None
    assert (found.id, found.incident_id, found.fingerprint) == ("3f1c", 12, "0af3")
    assert found.labels == (("alertname", "Disk"), ("disk", "sda"))
    assert found.ends_at == pytest.approx(parse_time("2027-01-15T08:00:00.123Z"))
    assert parse_silence(raw(ours, created_by="bob"), "maintwatch-receiver") is None
    assert parse_silence(raw(ours, state="expired"), "maintwatch-receiver") is None
    assert parse_silence(raw("deploy freeze"), "maintwatch-receiver") is None


def test_silence_body_round_trips_through_the_parser() -> None:
    body = silence_body(want(), NOW, DAY, "mw", "https://rx/incidents/7")
    assert body["endsAt"] == format_time(NOW + DAY)
    assert body["comment"].endswith("https://rx/incidents/7")
    assert all(m["isEqual"] and not m["isRegex"] for m in body["matchers"])
    listed = {**body, "id": "x1", "status": {"state": "active"}}
    parsed = parse_silence(listed, "mw")
    assert parsed == ExistingSilence("x1", 7, "aa01", want().labels, NOW + DAY)
    assert "id" not in body
    assert silence_body(want(), NOW, DAY, "mw", "", "x1")["id"] == "x1"


@pytest.mark.parametrize(
    "text", ["2026-12-04T13:00:00Z", "2026-12-04T13:00:00.5Z", "2026-12-04T13:00:00.123456789Z"]
)
def test_parse_time_takes_any_fraction(text: str) -> None:
    assert parse_time(text) == pytest.approx(1796389200.0, abs=1)


def test_incident_resolves_only_after_its_alerts_were_gone_for_the_grace() -> None:
    silenced = {7: {"aa01", "bb02"}, 8: {"cc03"}}
    first = missing_since({}, silenced, {"cc03"}, NOW)
    assert first == {7: NOW}
    later = missing_since(first, silenced, {"cc03"}, NOW + 200)
    assert later == {7: NOW}  # the first time it was seen missing is kept
    assert due_to_resolve(later, NOW + 200, 300) == []
    assert due_to_resolve(later, NOW + 300, 300) == [7]
    back = missing_since(later, silenced, {"bb02", "cc03"}, NOW + 250)
    assert back == {}  # one alert back (an Alertmanager restart refilled): the clock restarts


def test_config_section_and_its_errors(tmp_path: Any) -> None:
    text = "alertmanager: {url: 'http://127.0.0.1:9093', interval: 10s}\n"
    assert load_config_text(open_webhook(text)).alertmanager.enabled
    assert not load_config_text(OPEN_WEBHOOK).alertmanager.enabled
    with pytest.raises(ConfigError) as caught:
        load_config_text("alertmanager: {url: 'not a url', interval: 0s, password: x}\n", "rx.yml")
    text = "\n".join(caught.value.problems)
    assert "rx.yml: alertmanager.url:" in text
    assert "rx.yml: alertmanager.interval:" in text
