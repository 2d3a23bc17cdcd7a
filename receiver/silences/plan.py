"""Alertmanager silences for acknowledged incidents (pure): what should exist, what to change.

While an incident is acknowledged, each of its firing alerts gets one silence in Alertmanager
(exact matchers on all the alert's labels), so Alertmanager stops re-sending what someone is
already working on. An alert that joins the group later is not covered: it still reaches the
receiver and notifies the acknowledger, and is silenced on the next pass. The silences end
when the incident resolves, is unacknowledged or its ack expires.

Alertmanager itself is the record. A silence is ours when its `createdBy` is the configured
name and its comment names the incident and the alert fingerprint, so the reconciler keeps no
table of its own, survives restarts of either side, and several receiver replicas converge on
one silence per alert (a duplicate from a race is expired on the next pass).

A silenced alert's resolution never reaches the receiver (Alertmanager mutes resolved
notifications of silenced alerts too), so the reconciler also asks Alertmanager which alerts
are still active and resolves an acknowledged incident once none of its alerts has been
there for `resolve_after_missing` (a grace period: a restarted Alertmanager has no alerts
until Prometheus sends them again, within a minute).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, HttpUrl, SecretStr

from maintwatch.configload import Duration, SecretFromFile, StrictModel
from receiver.incident_record import IncidentRecord

ACTIVE_STATES = frozenset({"active", "pending"})
_COMMENT = re.compile(r"^maintwatch incident #(\d+) alert ([0-9a-f]{1,32})\b")
_FINGERPRINT = re.compile(r"^[0-9a-f]{1,32}$")  # Alertmanager's; the watchdog's own is not


class AlertmanagerConfig(StrictModel):
    """Where Alertmanager is, and how acknowledged incidents are silenced there."""

    url: HttpUrl | None = None
    silence_on_ack: bool = True
    silence_duration: Duration = Field(default=86400.0, ge=600)
    interval: Duration = Field(default=30.0, gt=0, le=3600)
    resolve_after_missing: Duration = Field(default=300.0, ge=0)
    timeout: Duration = Field(default=10.0, gt=0, le=300)
    created_by: str = Field(default="maintwatch-receiver", min_length=1, max_length=200)
    receivers: list[str] = Field(default_factory=list)  # empty: incidents of every receiver
    username: str | None = None
    password: SecretStr | None = None
    password_file: SecretFromFile | None = None

    @property
    def enabled(self) -> bool:
        """Return whether silences are managed at all."""
        return self.url is not None and self.silence_on_ack

    def basic_password(self) -> SecretStr | None:
        """Return the basic-auth password from `password` or `password_file`."""
        return self.password_file or self.password


def alertmanager_problems(config: AlertmanagerConfig) -> list[str]:
    """Return `path: message` for contradictory auth settings."""
    out = []
    if config.password is not None and config.password_file is not None:
        out.append("alertmanager.password_file: set either password or password_file, not both")
    if config.username is None and config.basic_password() is not None:
        out.append("alertmanager.username: required when a password is set")
    return out


@dataclass(frozen=True)
class WantedSilence:
    """One firing alert of an acknowledged incident that should be silenced."""

    incident_id: int
    fingerprint: str
    labels: tuple[tuple[str, str], ...]
    acked_by: str

    @property
    def key(self) -> tuple[int, str]:
        """Return (incident id, fingerprint)."""
        return self.incident_id, self.fingerprint


@dataclass(frozen=True)
class ExistingSilence:
    """One of our silences as Alertmanager lists it."""

    id: str
    incident_id: int
    fingerprint: str
    labels: tuple[tuple[str, str], ...] | None  # None: not all exact matchers (edited by hand)
    ends_at: float

    @property
    def key(self) -> tuple[int, str]:
        """Return (incident id, fingerprint)."""
        return self.incident_id, self.fingerprint


@dataclass(frozen=True)
class Plan:
    """What to change in Alertmanager: create, extend (same id) and expire silences."""

    create: list[WantedSilence] = field(default_factory=list)
    renew: list[tuple[ExistingSilence, WantedSilence]] = field(default_factory=list)
    expire: list[ExistingSilence] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.renew or self.expire)


def wanted(incident: IncidentRecord, receivers: Iterable[str] = ()) -> list[WantedSilence]:
    """Return the silences an acknowledged incident (as the store reads it) should have.

    `receivers` (Alertmanager receiver names) limits this to one Alertmanager's incidents
    when several independent ones post to this receiver.
    """
    if incident.state != "acknowledged":
        return []
    only = set(receivers)
    if only and incident.receiver not in only:
        return []
    by = incident.acked_by or "someone"
    return [
        WantedSilence(
            incident.id,
            alert.fingerprint,
            tuple(sorted((str(k), str(v)) for k, v in alert.labels.items())),
            by,
        )
        for alert in incident.alerts or ()
        if alert.status == "firing" and alert.labels and _FINGERPRINT.match(alert.fingerprint)
    ]


def parse_time(text: str) -> float:
    """Parse Alertmanager's RFC 3339 time (fractional seconds of any length) to epoch seconds."""
    text = text.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # fromisoformat takes at most 6 fractional digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    return datetime.fromisoformat(text).timestamp()


def format_time(epoch: float) -> str:
    """Return epoch seconds as Alertmanager's RFC 3339 UTC time."""
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def parse_silence(raw: Mapping[str, Any], created_by: str) -> ExistingSilence | None:
    """Return one of our active or pending silences, or None for anyone else's or ended ones."""
    if raw.get("createdBy") != created_by:
        return None
    if (raw.get("status") or {}).get("state") not in ACTIVE_STATES:
        return None
    found = _COMMENT.match(str(raw.get("comment", "")))
    if found is None:
        return None
    matchers = raw.get("matchers") or []
    exact = all(not m.get("isRegex") and m.get("isEqual", True) for m in matchers)
    labels = tuple(sorted((str(m["name"]), str(m["value"])) for m in matchers)) if exact else None
    return ExistingSilence(
        str(raw["id"]), int(found[1]), found[2], labels or None, parse_time(raw["endsAt"])
    )


def comment(silence: WantedSilence, incident_url: str) -> str:
    """Return the silence's comment: parseable prefix first, then what a person wants to see."""
    text = (
        f"maintwatch incident #{silence.incident_id} alert {silence.fingerprint}: acknowledged "
        f"by {silence.acked_by}; ends when the incident resolves or the ack ends."
    )
    return f"{text} {incident_url}" if incident_url else text


def silence_body(
    silence: WantedSilence,
    now: float,
    duration: float,
    created_by: str,
    incident_url: str,
    existing_id: str | None = None,
) -> dict[str, Any]:
    """Return the POST /api/v2/silences body (with `id`: extend that silence in place)."""
    body: dict[str, Any] = {
        "matchers": [
            {"name": name, "value": value, "isRegex": False, "isEqual": True}
            for name, value in silence.labels
        ],
        "startsAt": format_time(now),
        "endsAt": format_time(now + duration),
        "createdBy": created_by,
        "comment": comment(silence, incident_url),
    }
    if existing_id is not None:
        body["id"] = existing_id
    return body


def plan(
    want: Iterable[WantedSilence], have: Iterable[ExistingSilence], now: float, duration: float
) -> Plan:
    """Diff wanted against existing silences.

    One silence per wanted alert is kept (the one ending last) and extended once less than half
    its duration is left; a silence whose matchers no longer equal the alert's labels, a
    duplicate, or one nobody wants any more is expired.
    """
    result = Plan()
    existing: dict[tuple[int, str], list[ExistingSilence]] = {}
    for silence in have:
        existing.setdefault(silence.key, []).append(silence)
    for item in want:
        mine = sorted(existing.pop(item.key, []), key=lambda s: s.ends_at, reverse=True)
        keep = next((s for s in mine if s.labels == item.labels), None)
        result.expire.extend(s for s in mine if s is not keep)
        if keep is None:
            result.create.append(item)
        elif keep.ends_at - now < duration / 2:
            result.renew.append((keep, item))
    for rest in existing.values():
        result.expire.extend(rest)
    return result


def missing_since(
    previous: Mapping[int, float],
    silenced: Mapping[int, set[str]],
    active: set[str],
    now: float,
) -> dict[int, float]:
    """Return, per silenced incident none of whose alerts Alertmanager still has, since when."""
    out: dict[int, float] = {}
    for incident_id, fingerprints in silenced.items():
        if fingerprints and not fingerprints & active:
            out[incident_id] = previous.get(incident_id, now)
    return out


def due_to_resolve(missing: Mapping[int, float], now: float, grace: float) -> list[int]:
    """Return the incidents whose alerts have been gone from Alertmanager for `grace`."""
    return sorted(i for i, since in missing.items() if now - since >= grace)
