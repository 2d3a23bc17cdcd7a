"""Intake and outbox semantics, run against both stores (SQLite file and a fresh PostgreSQL DB)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from receiver.intake.payload import Payload, PayloadError, parse_payload
from receiver.routing.routes import Route
from receiver.store import Finish, IntakeRules, Store, Wanted
from tests.receiver._helpers import (
    EVERYTHING,
    T0,
    alert,
    fixture_bytes,
    payload,
)

END = "2026-11-22T12:30:00Z"


def body(data: dict[str, Any] | bytes) -> Payload:
    """Parse a webhook body."""
    return parse_payload(data if isinstance(data, bytes) else json.dumps(data).encode())


async def pending(store: Store) -> list[Any]:
    """Return the outbox rows that are due now."""
    return await store.claim(T0 + 10**6, EVERYTHING, 60.0, 100, 60.0)


async def test_fixture_lifecycle(store: Store, rules: IntakeRules) -> None:
    opened = await store.ingest(body(fixture_bytes("firing-single.json")), T0, rules)
    assert (opened.action, opened.notifications) == ("open", 1)
    again = await store.ingest(body(fixture_bytes("firing-single.json")), T0 + 1, rules)
    assert again.action == "none"
    resolved = await store.ingest(body(fixture_bytes("resolved.json")), T0 + 2, rules)
    assert (resolved.action, resolved.incident_id) == ("resolve", opened.incident_id)
    late = await store.ingest(body(fixture_bytes("firing-single.json")), T0 + 3, rules)
    assert late.action == "none"  # the old firing payload after the resolution changes nothing
    assert opened.incident_id is not None
    incident = (await store.incident(opened.incident_id)).to_json()
    assert incident is not None
    assert incident["state"] == "resolved"
    assert incident["routes"] == ["crit"]
    assert incident["alerts"][0]["ends_at"] == "2026-11-22T13:29:18.255000Z"
    assert [(n["channel"], n["kind"]) for n in incident["notifications"]] == [
        ("pager", "firing"),
        ("pager", "resolved"),
    ]
    rows = await pending(store)
    assert rows[0].body["incident_url"] == f"https://rx.example/incidents/{opened.incident_id}"
    assert rows[0].body["title"] == "[FIRING:1] BackupTooOld (database critical ops)"


async def test_partly_resolved_group(store: Store, rules: IntakeRules) -> None:
    opened = await store.ingest(body(fixture_bytes("firing-group.json")), T0, rules)
    partly = await store.ingest(body(fixture_bytes("group-partly-resolved.json")), T0 + 1, rules)
    assert (partly.action, partly.notifications) == ("refresh", 0)
    assert opened.incident_id is not None
    incident = (await store.incident(opened.incident_id)).to_json()
    assert incident is not None
    assert incident["state"] == "triggered"
    assert incident["severity"] == "warning"
    assert {a["fingerprint"]: a["status"] for a in incident["alerts"]} == {
        "addc6c47102b6e48": "firing",
        "4e8f171052de34e3": "resolved",
    }
    assert [n["channel"] for n in incident["notifications"]] == ["chat"]


async def test_reordered_resolution_first(store: Store, rules: IntakeRules) -> None:
    first = await store.ingest(body(payload(alert("a", "resolved", ends=END))), T0, rules)
    assert first.action == "marks"
    late = await store.ingest(body(payload(alert("a"))), T0 + 1, rules)
    assert late.action == "none"
    assert await store.incidents(None, {}, 10) == []


async def test_refire_opens_a_new_incident(store: Store, rules: IntakeRules) -> None:
    one = await store.ingest(body(payload(alert("a"))), T0, rules)
    await store.ingest(body(payload(alert("a", "resolved", ends=END))), T0 + 1, rules)
    two = await store.ingest(body(payload(alert("a", starts="2026-11-22T14:00:00Z"))), T0, rules)
    assert two.action == "open"
    assert two.incident_id != one.incident_id
    states = [i.state for i in await store.incidents(None, {}, 10)]
    assert states == ["triggered", "resolved"]


async def test_concurrent_duplicates_make_one_incident(store: Store, rules: IntakeRules) -> None:
    data = body(fixture_bytes("firing-group.json"))
    results = await asyncio.gather(*(store.ingest(data, T0, rules) for _ in range(4)))
    assert sorted(r.action for r in results) == ["none", "none", "none", "open"]
    assert len(await pending(store)) == 1


async def test_thousand_unicode_alerts_and_truncation(store: Store, rules: IntakeRules) -> None:
    alerts = [alert(f"fp{i:04d}", service=f"сервис-{i} ✓") for i in range(1000)]
    result = await store.ingest(body(payload(*alerts, truncated=25)), T0, rules)
    assert result.action == "open"
    assert result.incident_id is not None
    incident = (await store.incident(result.incident_id)).to_json()
    assert incident is not None
    assert len(incident["alerts"]) == 1000
    assert incident["truncated_alerts"] == 25
    assert incident["alerts"][7]["labels"]["service"] == "сервис-7 ✓"
    (row,) = await pending(store)
    assert row.body["truncated_alerts"] == 25


async def test_the_largest_truncation_count_the_parser_accepts_is_stored(
    store: Store, rules: IntakeRules
) -> None:
    # Found by schemathesis: a count past the INTEGER column was a 500, not a 400.
    largest = 2**31 - 1
    result = await store.ingest(body(payload(alert("a"), truncated=largest)), T0, rules)
    assert result.incident_id is not None
    incident = (await store.incident(result.incident_id)).to_json()
    assert incident is not None
    assert incident["truncated_alerts"] == largest
    with pytest.raises(PayloadError, match="truncatedAlerts"):
        body(payload(alert("a"), truncated=largest + 1))


async def test_info_is_stored_for_the_digest_and_never_pages(
    store: Store, rules: IntakeRules
) -> None:
    info = payload(alert("a", severity="info"), severity="info")
    result = await store.ingest(body(info), T0, rules)
    assert (result.action, result.notifications) == ("open", 0)
    listed = [i.to_json() for i in await store.incidents("triggered", {"severity": "info"}, 10)]
    assert [(i["id"], i["digest"], i["paged"]) for i in listed] == [
        (result.incident_id, True, False)
    ]
    resolved = await store.ingest(
        body(payload(alert("a", "resolved", ends=END, severity="info"))), T0, rules
    )
    assert (resolved.action, resolved.notifications) == ("resolve", 0)


async def test_filters(store: Store, rules: IntakeRules) -> None:
    await store.ingest(body(payload(alert("a"), group="g1", team="db")), T0, rules)
    await store.ingest(body(payload(alert("b"), group="g2", team="ops")), T0, rules)
    db = [i.to_json() for i in await store.incidents(None, {"team": "db"}, 10)]
    assert [i["group_key"] for i in db] == ["g1"]
    assert db[0]["channels"] == ["chat"]
    assert await store.incidents("resolved", {}, 10) == []
    assert len(await store.incidents("triggered", {}, 10)) == 2


async def test_claim_fencing_and_recovery(store: Store, rules: IntakeRules) -> None:
    rules_sms = IntakeRules(rules.routes, at_most_once=frozenset({"pager"}))
    await store.ingest(body(payload(alert("a"), group="sms")), T0, rules_sms)
    await store.ingest(body(payload(alert("b"), group="mail")), T0, rules)
    claimed = await store.claim(T0, EVERYTHING, 30.0, 5, 600.0)
    assert [r.at_most_once for r in claimed] == [True, False]
    assert await store.claim(T0, EVERYTHING, 30.0, 5, 600.0) == []  # already sending
    # The worker "crashed" before either request left: after the lease both are due again.
    recovered = await store.recover(T0 + 31)
    assert (recovered.unsure, recovered.retried) == ((), (claimed[0].id, claimed[1].id))
    assert not await store.finish(claimed[1], Finish("sent", T0 + 32))  # stale claim is fenced
    assert not await store.start(claimed[0], T0 + 32)  # a stale claim never starts a send
    sms, mail = await store.claim(T0 + 32, EVERYTHING, 30.0, 5, 600.0)
    assert (mail.id, mail.attempts, sms.started_at) == (claimed[1].id, 2, None)
    assert await store.finish(mail, Finish("sent", T0 + 33, provider_id="m1"))
    # This time the SMS request leaves, and the worker dies before Twilio answers.
    assert await store.start(sms, T0 + 33)
    assert (await store.recover(T0 + 70)).unsure == (sms.id,)
    (unsure,) = await store.claim(T0 + 70, EVERYTHING, 30.0, 5, 600.0)
    assert (unsure.id, unsure.started_at) == (sms.id, T0 + 33)
    # A retry after a failure that proves nothing left clears the mark; a maybe keeps it.
    assert await store.finish(unsure, Finish("pending", T0 + 71, next_attempt_at=T0 + 71))
    (cleared,) = await store.claim(T0 + 71, EVERYTHING, 30.0, 5, 600.0)
    assert cleared.started_at is None
    assert await store.start(cleared, T0 + 72)
    kept = Finish("pending", T0 + 73, next_attempt_at=T0 + 73, maybe_sent=True)
    assert await store.finish(cleared, kept)
    (checked,) = await store.claim(T0 + 73, EVERYTHING, 30.0, 5, 600.0)
    assert checked.started_at == T0 + 72
    stats = await store.stats()
    assert stats.outbox == {"sent": 1, "sending": 1}


async def test_lanes_take_free_slots_most_severe_first(store: Store, rules: IntakeRules) -> None:
    two_lanes = IntakeRules(
        (Route("both", (), ("mail", "chat"), ("ann", "bob"), None, False),),
    )
    for group, severity in (("g1", "warning"), ("g2", "critical"), ("g3", "warning")):
        data = payload(alert("a", severity=severity), group=group, severity=severity)
        await store.ingest(body(data), T0, two_lanes)
    # Six rows per lane (three incidents x two people); two slots in mail, none in chat,
    # one message in flight per person at most.
    wanted = Wanted({"mail": 2, "chat": 0}, per_recipient=1)
    taken = await store.claim(T0, wanted, 30.0, 5, 600.0)
    assert [(r.channel, r.recipient, r.body["severity"]) for r in taken] == [
        ("mail", "ann", "critical"),
        ("mail", "bob", "critical"),
    ]
    busy = Wanted({"mail": 4, "chat": 1}, per_recipient=1, in_flight={("mail", "ann"): 1})
    taken = await store.claim(T0, busy, 30.0, 5, 600.0)
    assert sorted((r.channel, r.recipient) for r in taken) == [("chat", "ann"), ("mail", "bob")]
    assert taken[0].body["severity"] == "critical"


async def test_sms_rate_limit_defers(store: Store, rules: IntakeRules) -> None:
    rules_sms = IntakeRules(rules.routes, at_most_once=frozenset({"pager"}))
    for group in ("g1", "g2", "g3"):
        await store.ingest(body(payload(alert("a"), group=group)), T0, rules_sms)
    claimed = await store.claim(T0, EVERYTHING, 30.0, 2, 600.0)
    assert len(claimed) == 2
    assert await store.claim(T0 + 599, EVERYTHING, 30.0, 2, 600.0) == []
    (third,) = await store.claim(T0 + 600, EVERYTHING, 30.0, 2, 600.0)
    assert third.id not in {r.id for r in claimed}


async def test_manual_resolve(store: Store, rules: IntakeRules) -> None:
    opened = await store.ingest(body(payload(alert("a"))), T0, rules)
    assert opened.incident_id is not None
    done = await store.resolve(opened.incident_id, T0 + 5, "api", rules)
    assert done is not None
    assert (done.action, done.notifications) == ("resolve", 1)
    again = await store.resolve(opened.incident_id, T0 + 6, "api", rules)
    assert again is not None
    assert again.action == "none"
    assert await store.resolve(999, T0, "api", rules) is None
    # Alertmanager repeating the same firing alert does not reopen it.
    assert (await store.ingest(body(payload(alert("a"))), T0 + 7, rules)).action == "none"
