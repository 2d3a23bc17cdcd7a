"""End to end through real processes: exporter → Prometheus (project rules) → two Alertmanagers →
`maintwatch-receiver` → email (aiosmtpd), SMS (local Twilio API) and chat (local Slack webhook).

One stack per module (starting Prometheus and two Alertmanagers per test would cost most of the
time budget); each scenario drives its own alert, so the tests do not depend on each other's
order. Everything is asserted from the outside: Prometheus' alerts API, the receiver's API and
signed links, and the messages the fakes received.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from tests.e2e._configs import ANN, BOB, CAROL, TEAM_MAIL, Person
from tests.e2e._stack import Stack, eventually, running_stack
from tests.e2e._tap import Delivery, Tap

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

HOUR = 3600.0
STALE = "BackupTooOld"
CERT = "TLSCertificateExpiringSoon"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack() -> AsyncIterator[Stack]:
    """Start the whole pipeline once for the module; tear it all down afterwards."""
    async with running_stack("mwe2e" + uuid.uuid4().hex[:10]) as running:
        yield running


async def _one_incident(stack: Stack, alertname: str, state: str | None = None) -> dict[str, Any]:
    """Wait for the receiver to hold exactly one incident for `alertname`; return it."""

    async def found() -> list[dict[str, Any]]:
        return await stack.incidents(alertname, state)

    incidents = await eventually(found, f"a {state or 'any'} incident for {alertname}")
    assert len(incidents) == 1, incidents
    only: dict[str, Any] = incidents[0]
    return only


def _pages(
    stack: Stack, incident: int, alertname: str, kind: str = "firing"
) -> dict[str, list[str]]:
    """Return, per person, the channels (mail, sms) through which they got `kind` messages."""
    out: dict[str, list[str]] = {}
    for person in (ANN, BOB, CAROL):
        mails = stack.mailbox.to(person.email, incident, kind)
        # SMS carry no incident header: each scenario drives its own alert name.
        sms = [m for m in stack.twilio.to(person.phone, alertname) if _sms_kind(m.body) == kind]
        out[person.id] = ["mail"] * len(mails) + ["sms"] * len(sms)
    return out


def _mailed_ack_link(stack: Stack, iid: int, person: Person) -> str:
    """Return the signed ack link from `person`'s firing mail, as they would click it."""
    (mail,) = stack.mailbox.to(person.email, iid, "firing")
    (line,) = [x for x in mail.text().splitlines() if x.startswith("Acknowledge: ")]
    return line.removeprefix("Acknowledge: ").strip()


def _paged(
    stack: Stack, iid: int, alertname: str, person: str, kind: str = "firing"
) -> Callable[[], bool]:
    """Return a check: `person` got exactly one `kind` mail and one `kind` SMS."""
    return lambda: sorted(_pages(stack, iid, alertname, kind)[person]) == ["mail", "sms"]


def _delivered(tap: Tap, alertname: str) -> Callable[[], list[Delivery]]:
    """Return a check: the firing deliveries of `alertname` the receiver accepted via `tap`."""
    return lambda: [d for d in tap.of(alertname) if d.status == "firing" and d.answer_status == 200]


def _sms_kind(body: str) -> str:
    if body.startswith("RESOLVED"):
        return "resolved"
    return "acknowledged" if body.startswith("ACK") else "firing"


async def test_stale_backup_pages_escalates_is_acked_by_link_and_resolves(stack: Stack) -> None:
    stack.world.age_newest(3 * HOUR)  # max_age 1h: past 2 x, so both tiers fire

    async def critical_firing() -> bool:
        # The warning tier fires first; wait for the critical one rather than any tier.
        tiers = {a["labels"]["severity"] for a in await stack.firing("BackupTooOld")}
        return "critical" in tiers

    assert await eventually(critical_firing, "BackupTooOld critical firing in Prometheus")
    incident = await _one_incident(stack, "BackupTooOld")
    iid = incident["id"]
    assert (incident["severity"], incident["policy"]) == ("critical", "oncall")

    # Level 1: Ann, by email and SMS. Nobody acks, so level 2 (Bob) follows after its delay.
    await eventually(_paged(stack, iid, STALE, "ann"), "level 1 page to Ann")
    await eventually(_paged(stack, iid, STALE, "bob"), "level 2 page to Bob")
    before = await stack.incident(iid)
    assert before["state"] == "triggered"
    assert before["next_step_at"] is not None, "level 3 should be scheduled while unacked"

    # Ann acks through the signed link in her mail: GET only shows the confirm page, POST acts.
    link = _mailed_ack_link(stack, iid, ANN)
    assert link.startswith(f"{stack.receiver}/ack/")
    (sms,) = [m for m in stack.twilio.to(ANN.phone, STALE) if _sms_kind(m.body) == "firing"]
    assert f"{stack.receiver}/ack/" in sms.body, "the SMS carries a signed ack link too"
    async with stack.http.get(link) as page:
        assert page.status == 200
        text = await page.text()
    assert f"incident #{iid}?" in text
    assert '<form method="post">' in text
    assert (await stack.incident(iid))["state"] == "triggered"
    async with stack.http.post(link) as done:
        assert done.status == 200
        assert f"Incident {iid} is acknowledged." in await done.text()
    acked = await stack.incident(iid)
    assert (acked["state"], acked["acked_by"]) == ("acknowledged", "ann")
    assert acked["next_step_at"] is None, "the ack must cancel level 3"
    await eventually(_paged(stack, iid, STALE, "bob", "acknowledged"), "Bob told of the ack")
    async with stack.http.post(link) as again:
        assert again.status == 409  # single use
    # The ack silenced the incident's alert in the first Alertmanager (alertmanager.url).
    silences = await eventually(_silences(stack, iid, "active"), "silence for the acked alert")
    matched = [{m["name"]: m["value"] for m in s["matchers"]} for s in silences]
    assert {m["alertname"] for m in matched} == {STALE}
    assert "critical" in {m["severity"] for m in matched}

    # The nightly job runs again: the alert resolves and everyone paged hears it.
    stack.world.write_fresh_backup()
    await _one_incident(stack, "BackupTooOld", "resolved")
    assert not await stack.firing("BackupTooOld")
    await eventually(_paged(stack, iid, STALE, "ann", "resolved"), "resolved message to Ann")
    await eventually(_paged(stack, iid, STALE, "bob", "resolved"), "resolved message to Bob")
    assert _pages(stack, iid, STALE)["carol"] == [], "level 3 must never have been paged"
    events = (await stack.incident(iid))["events"]
    assert not [e for e in events if e["kind"] == "escalated" and "step 3" in e["detail"]]
    await eventually(_no_silences(stack, iid), "the silence ended with the incident")


def _silences(stack: Stack, iid: int, state: str) -> Callable[[], Awaitable[list[Any]]]:
    async def found() -> list[Any]:
        async with stack.http.get(f"{stack.alertmanagers[0]}/api/v2/silences") as response:
            listed = await response.json()
        mine = f"maintwatch incident #{iid} "
        return [
            s for s in listed if s["comment"].startswith(mine) and s["status"]["state"] == state
        ]

    return found


def _no_silences(stack: Stack, iid: int) -> Callable[[], Awaitable[bool]]:
    async def none_active() -> bool:
        return not await _silences(stack, iid, "active")()

    return none_active


async def test_certificate_expiring_in_five_days_pages_critical(stack: Stack) -> None:
    async def critical() -> list[dict[str, Any]]:
        alerts = await stack.firing("TLSCertificateExpiringSoon")
        return [a for a in alerts if a["labels"]["severity"] == "critical"]

    alert = (await eventually(critical, "TLSCertificateExpiringSoon critical in Prometheus"))[0]
    assert alert["labels"]["target"] == "shop_cert"
    incident = await _one_incident(stack, "TLSCertificateExpiringSoon")
    assert incident["severity"] == "critical"
    iid = incident["id"]
    await eventually(_paged(stack, iid, CERT, "ann"), "critical page to Ann")
    mail = stack.mailbox.to(ANN.email, iid, "firing")[0]
    assert "TLSCertificateExpiringSoon" in mail.subject
    assert "shop_cert" in mail.text()


async def test_two_alertmanagers_send_the_same_group_and_it_pages_once(stack: Stack) -> None:
    firsts = [
        (await eventually(_delivered(tap, CERT), f"{tap.name} delivering the {CERT} group"))[0]
        for tap in stack.taps
    ]
    assert firsts[0].group_key == firsts[1].group_key
    # Both deliveries were accepted into the inbox, one after the other.
    assert all(d.answer["status"] == "ok" for d in firsts)
    assert firsts[0].answer["accepted"] != firsts[1].answer["accepted"]
    incident = await _one_incident(stack, CERT)
    # Persisted before each 200: had the duplicate queued anything, it would show here.
    notifications = (await stack.incident(incident["id"]))["notifications"]
    to_ann = [n for n in notifications if n["kind"] == "firing" and n["recipient"] == ANN.id]
    assert sorted(n["channel"] for n in to_ann) == ["mail", "sms"]
    await eventually(_paged(stack, incident["id"], CERT, "ann"), "one page to Ann")


async def test_failed_job_warns_the_team_chat(stack: Stack) -> None:
    series = 'maintwatch_failed_jobs_total{database="shop",queue="emails"}'
    await eventually(lambda: stack.query(series), "the failed-jobs counter scraped at 0")
    stack.world.fail_job()
    await eventually(lambda: stack.firing("FailedJobsAppearing"), "FailedJobsAppearing firing")
    incident = await _one_incident(stack, "FailedJobsAppearing")
    assert incident["severity"] == "warning"
    posts = await eventually(lambda: stack.chat.posts("FailedJobsAppearing"), "a chat post")
    assert len(posts) == 1
    assert posts[0]["attachments"][0]["color"] == "#ECB22E"  # warning
    detail = await stack.incident(incident["id"])
    assert {n["channel"] for n in detail["notifications"]} == {"chat"}, "a warning never pages"
    opened = datetime.fromisoformat(detail["opened_at"])
    # The policy's warning_delay (1 h default): level 1 only if nobody acted within the hour.
    assert datetime.fromisoformat(detail["next_step_at"]) - opened >= timedelta(minutes=59)


async def test_info_alert_only_goes_into_the_digest(stack: Stack) -> None:
    incident = await _one_incident(stack, "BackupSizeJumped")
    iid = incident["id"]
    assert (incident["severity"], incident["digest"]) == ("info", True)
    assert (await stack.incident(iid))["notifications"] == [], "info never pages"

    # The digest covers incidents opened before its time (HH:MM): set it to the first minute
    # after this one opened and reload (SIGHUP). It goes out once that minute has come.
    opened = datetime.fromisoformat(incident["opened_at"]).astimezone(UTC)
    at = opened.replace(second=0, microsecond=0) + timedelta(minutes=1)
    await stack.reload_receiver(at.strftime("%H:%M"))
    digests = await eventually(
        lambda: stack.mailbox.to(TEAM_MAIL, kind="digest"), "the digest mail", timeout=150
    )
    assert len(digests) == 1
    assert digests[0].subject.startswith("Daily digest")
    assert f"#{iid} BackupSizeJumped" in digests[0].text()
    assert not [m for m in stack.mailbox.mails if m.kind != "digest" and m.incident == iid]
    assert not stack.chat.posts("BackupSizeJumped")
    assert not [m for m in stack.twilio.messages() if "BackupSizeJumped" in m.body]
