"""Convert between stored rows and the pure types; shared by both backends."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol

import pydantic_core

from receiver.delivery.lanes import priority
from receiver.intake.decide import IncidentMeta, IncidentWrite, IntakeRules, Transition
from receiver.intake.merge import AlertRecord, GroupState, Mark, Merge, OpenIncident
from receiver.store.base import OutboxRow

Row = Mapping[str, Any]

JSON_COLUMNS = frozenset(
    {
        "group_labels",
        "common_labels",
        "common_annotations",
        "routes",
        "channels",
        "people",
        "labels",
        "annotations",
        "body",
        "escalation",
        "thread",
    }
)
TIME_COLUMNS = frozenset(
    {
        "opened_at",
        "updated_at",
        "resolved_at",
        "acked_at",
        "next_step_at",
        "starts_at",
        "ends_at",
        "created_at",
        "next_attempt_at",
        "deadline",
        "sent_at",
        "finished_at",
        "at",
        "digested_at",
        "last_seen",
        "down_since",
    }
)
BOOL_COLUMNS = frozenset({"digest", "paged", "at_most_once"})


def dumps(value: Any) -> str:
    """Serialize JSON compactly (stored columns)."""
    # pydantic-core's encoder is ~5x faster than json.dumps, and intake serializes ~10 values.
    return pydantic_core.to_json(value).decode()


def migrations() -> list[tuple[int, str]]:
    """Return (version, SQL) for every migration file, in order; `Dialect.schema` renders it."""
    folder = resources.files("receiver.store.migrations")
    found = []
    for item in folder.iterdir():
        if item.name.endswith(".sql"):
            found.append((int(item.name.split("_", 1)[0]), item.read_text(encoding="utf-8")))
    return sorted(found)


def marks_from(text: str) -> dict[str, Mark]:
    """Decode the group's watermark column."""
    return {fp: Mark(v[0], v[1], v[2]) for fp, v in json.loads(text).items()}


def marks_to(marks: Mapping[str, Mark]) -> str:
    """Encode the group's watermark column."""
    return dumps({fp: [m.starts_at, m.status, m.ends_at] for fp, m in marks.items()})


def alert_from(row: Row) -> AlertRecord:
    """Build an AlertRecord from an incident_alerts row."""
    return AlertRecord(
        fingerprint=row["fingerprint"],
        status=row["status"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        labels=json.loads(row["labels"]),
        annotations=json.loads(row["annotations"]),
        generator_url=row["generator_url"],
    )


class OutboxItem(Protocol):
    """What an outbox row is made of, from intake (`Planned`) or escalation (`Message`)."""

    @property
    def channel(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def recipient(self) -> str | None: ...
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def not_before(self) -> float | None: ...


def outbox_params(
    incident_id: int,
    items: Sequence[OutboxItem],
    now: float,
    rules: IntakeRules,
    fallback_of: int | None = None,
) -> list[tuple[Any, ...]]:
    """Return INSERT_OUTBOX parameters (the same column order on both stores).

    A held item (quiet hours) is created, and first due, when it may go.
    """
    out = []
    for item in items:
        due = max(now, item.not_before or now)
        out.append(
            (
                incident_id,
                item.channel,
                item.kind,
                item.recipient,
                dumps(item.body),
                item.channel in rules.at_most_once,
                rules.rate_key(item.channel, item.recipient),
                due,
                due,
                fallback_of,
                priority(item.body),
            )
        )
    return out


def alert_params(incident_id: int, alert: AlertRecord, now: float) -> tuple[Any, ...]:
    """Return the incident_alerts column values, in schema order."""
    return (
        incident_id,
        alert.fingerprint,
        alert.status,
        alert.starts_at,
        alert.ends_at,
        dumps(alert.labels),
        dumps(alert.annotations),
        alert.generator_url,
        now,
    )


def group_from(
    marks: str, incident: Row | None, alerts: Sequence[Row]
) -> tuple[GroupState, IncidentMeta | None]:
    """Build the pure group state (and the open incident's routing facts) from rows."""
    if incident is None:
        return GroupState(marks_from(marks)), None
    open_incident = OpenIncident(
        id=incident["id"],
        state=incident["state"],
        severity=incident["severity"],
        alerts={r["fingerprint"]: alert_from(r) for r in alerts},
    )
    meta = IncidentMeta(
        channels=tuple(json.loads(incident["channels"])),
        people=tuple(json.loads(incident["people"])),
        paged=bool(incident["paged"]),
        opened_at=incident["opened_at"],
    )
    return GroupState(marks_from(marks), open_incident), meta


def incident_params(write: IncidentWrite) -> dict[str, Any]:
    """Return named parameters for inserting/updating an incident row."""
    values = dict(vars(write))  # shallow: asdict's deep copies are costly on the intake path
    for key in ("group_labels", "common_labels", "common_annotations"):
        values[key] = dumps(values[key])
    for key in ("routes", "channels", "people"):
        values[key] = dumps(list(values[key]))
    return values


def manual_resolve(incident: Row, alerts: Sequence[Row], now: float) -> Transition:
    """Return the transition of resolving an incident by hand (API)."""
    records = {r["fingerprint"]: alert_from(r) for r in alerts}
    write = IncidentWrite(
        state="resolved",
        severity=incident["severity"],
        group_labels=json.loads(incident["group_labels"]),
        common_labels=json.loads(incident["common_labels"]),
        common_annotations=json.loads(incident["common_annotations"]),
        external_url=incident["external_url"],
        truncated_alerts=incident["truncated_alerts"],
        routes=tuple(json.loads(incident["routes"])),
        channels=tuple(json.loads(incident["channels"])),
        people=tuple(json.loads(incident["people"])),
        policy=incident["policy"],
        digest=bool(incident["digest"]),
        paged=bool(incident["paged"]),
        updated_at=now,
        resolved_at=now,
    )
    merge = Merge("resolve", {}, {}, severity=incident["severity"], all_alerts=records)
    return Transition(merge, write)


def iso(value: float | None) -> str | None:
    """Format epoch seconds as RFC 3339 UTC for the API."""
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat().replace("+00:00", "Z")


def to_json(row: Row) -> dict[str, Any]:
    """Turn a stored row into API JSON: decode JSON columns, times as RFC 3339."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in JSON_COLUMNS and isinstance(value, str):
            out[key] = json.loads(value)
        elif key in TIME_COLUMNS:
            out[key] = iso(value)
        elif key in BOOL_COLUMNS:
            out[key] = bool(value)
        else:
            out[key] = value
    return out


def outbox_row(row: Row, attempts: int) -> OutboxRow:
    """Build a claimed OutboxRow; `attempts` is the number of this attempt (the fencing token)."""
    return OutboxRow(
        id=row["id"],
        incident_id=row["incident_id"],
        channel=row["channel"],
        kind=row["kind"],
        recipient=row["recipient"],
        body=json.loads(row["body"]),
        attempts=attempts,
        at_most_once=bool(row["at_most_once"]),
        created_at=row["created_at"],
        fallback_of=row["fallback_of"],
        started_at=row["started_at"],
    )
