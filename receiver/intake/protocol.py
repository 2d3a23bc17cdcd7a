"""What the applier tells its parent: one JSON line per applied batch."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

from receiver.intake.payload import Payload
from receiver.store import IngestResult


@dataclass(frozen=True)
class Applied:
    """What one inbox row did, with the payload fields the parent logs and counts."""

    seq: int
    receiver: str = ""
    group_key: str = ""
    status: str = ""
    alert_statuses: list[str] = field(default_factory=list)
    truncated: int = 0
    action: str = ""
    incident_id: int | None = None
    notifications: int = 0
    error: str | None = None

    @classmethod
    def of(cls, seq: int, payload: Payload | None, result: IngestResult | Exception) -> Applied:
        """Describe a row's outcome (payload None: the body no longer parses)."""
        base = cls(seq)
        if payload is not None:
            statuses: list[str] = [a.status for a in payload.alerts]
            base = cls(
                seq, payload.receiver, payload.groupKey, payload.status, statuses,
                payload.truncatedAlerts,
            )  # fmt: skip
        if isinstance(result, Exception):
            return replace(base, error=f"{type(result).__name__}: {result}")
        return replace(
            base,
            action=result.action,
            incident_id=result.incident_id,
            notifications=result.notifications,
        )


def encode(mark: int, applied: list[Applied]) -> bytes:
    """Return the line for a batch: the new mark and every row's outcome."""
    return json.dumps({"mark": mark, "applied": [asdict(a) for a in applied]}).encode() + b"\n"


def decode(line: bytes) -> tuple[int, list[Applied]]:
    """Parse a line written by `encode`."""
    message = json.loads(line)
    return int(message["mark"]), [Applied(**a) for a in message["applied"]]
