"""Parse and validate Alertmanager's webhook (version 4) into typed, immutable values (pure)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maintwatch.configload import format_location


class PayloadError(ValueError):
    """The body is not a usable Alertmanager webhook; the message says why (sent back as 400)."""


Labels = dict[str, str]
# JSON can carry U+0000 only escaped: a body without this sequence holds none (raw control
# characters are invalid JSON), and the per-field check is skipped for it.
_ESCAPED_NUL = b"\\u0000"


class _Lenient(BaseModel):
    # Newer Alertmanagers add fields (e.g. notification_reason): accept and ignore them.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Alert(_Lenient):
    """One alert of the group."""

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = Field(min_length=1)

    @property
    def starts(self) -> float:
        """Return startsAt as epoch seconds."""
        return _epoch(self.startsAt) or 0.0

    @property
    def ends(self) -> float | None:
        """Return endsAt as epoch seconds, None for Go's zero time (still firing)."""
        return _epoch(self.endsAt)


class Payload(_Lenient):
    """The webhook body."""

    version: str
    groupKey: str = Field(min_length=1)
    receiver: str
    status: Literal["firing", "resolved"]
    alerts: list[Alert]
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: str = ""
    # Bounded by the stores' INTEGER column (PostgreSQL's is 32-bit): beyond it a 400 with the
    # field named, not a 500 from the database. Real counts are far below (max_alerts).
    truncatedAlerts: int = Field(default=0, ge=0, le=2**31 - 1)


def _epoch(value: datetime | None) -> float | None:
    # Alertmanager sends Go's zero time (0001-01-01T00:00:00Z) for "not set".
    if value is None or value.year <= 1:
        return None
    return value.timestamp()


def parse_payload(body: bytes) -> Payload:
    """Validate a webhook body; raise PayloadError with a reason Alertmanager will log."""
    try:
        payload = Payload.model_validate_json(body)
    except ValidationError as exc:
        raise PayloadError(_reason(exc)) from None
    if payload.version != "4":
        raise PayloadError(f"version: unsupported webhook version {payload.version!r} (want '4')")
    if not payload.alerts:
        raise PayloadError("alerts: empty alert list")
    if _ESCAPED_NUL in body:
        # PostgreSQL's text and jsonb refuse U+0000; refusing it here gives both stores one
        # answer (400 naming the field) instead of a 500 Alertmanager would retry forever.
        for where, text in _texts(payload):
            if "\x00" in text:
                raise PayloadError(f"{format_location(where)}: NUL character (U+0000) not allowed")
    return payload


Location = tuple[int | str, ...]


def _texts(payload: Payload) -> Iterator[tuple[Location, str]]:
    """Yield every string of the payload that is stored, with where it is (as pydantic's)."""
    yield ("groupKey",), payload.groupKey
    yield ("receiver",), payload.receiver
    yield ("externalURL",), payload.externalURL
    for name in ("groupLabels", "commonLabels", "commonAnnotations"):
        yield from _label_texts((name,), getattr(payload, name))
    for index, alert in enumerate(payload.alerts):
        yield ("alerts", index, "fingerprint"), alert.fingerprint
        yield ("alerts", index, "generatorURL"), alert.generatorURL
        yield from _label_texts(("alerts", index, "labels"), alert.labels)
        yield from _label_texts(("alerts", index, "annotations"), alert.annotations)


def _label_texts(at: Location, labels: Mapping[str, str]) -> Iterator[tuple[Location, str]]:
    for name, value in labels.items():
        yield (*at, name, "[key]"), name
        yield (*at, name), value


def _reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        return f"malformed JSON: {errors[0]['msg']}"
    parts = [
        f"{format_location(e['loc'])}: {e['msg'].removeprefix('Value error, ')}" for e in errors[:5]
    ]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more
