"""What `maintwatch-receiver inbox failed` and `inbox replay` print (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from receiver.intake.inbox import FailedRow
from receiver.intake.payload import PayloadError, parse_payload
from receiver.intake.protocol import Applied

_ACTIONS = {
    "none": "unchanged: already applied, or older than what the group has seen",
    "marks": "alerts recorded, no incident (none firing)",
    "refresh": "incident {id}refreshed",
    "open": "incident {id}opened",
    "update": "incident {id}updated",
    "resolve": "incident {id}resolved",
    "watchdog": "watchdog alerts only, nothing to apply",
}


def describe(row: FailedRow) -> dict[str, Any]:
    """Return a kept row as the JSON listing shows it (receiver, group_key: None if unparsable)."""
    try:
        payload = parse_payload(row.body)
    except PayloadError:
        receiver, group_key = None, None
    else:
        receiver, group_key = payload.receiver, payload.groupKey
    return {
        "seq": row.seq,
        "received_at": _iso(row.received_at),
        "failed_at": _iso(row.failed_at),
        "error": row.error,
        "receiver": receiver,
        "group_key": group_key,
        "body_bytes": len(row.body),
    }


def listing_json(rows: list[FailedRow]) -> str:
    """Return the listing as one JSON array."""
    return json.dumps([describe(r) for r in rows], indent=2)


def listing_text(rows: list[FailedRow], where: str) -> list[str]:
    """Return the listing as lines: a block per row, then a count naming the inbox."""
    lines: list[str] = []
    for row in rows:
        item = describe(row)
        size = item["body_bytes"]
        lines.append(
            f"seq {row.seq}  received {item['received_at']}  failed {item['failed_at']}  "
            f"{size} byte{'' if size == 1 else 's'}"
        )
        if item["group_key"] is None:
            lines.append("  group:    (the body does not parse)")
        else:
            lines.append(f"  receiver: {item['receiver']}")
            lines.append(f"  group:    {item['group_key']}")
        lines.append(f"  error:    {row.error}")
    count = len(rows)
    lines.append(f"{count or 'no'} failed row{'' if count == 1 else 's'} in {where}")
    return lines


def replay_totals(results: list[Applied], dry_run: bool) -> str:
    """Return the line after the replayed rows' lines."""
    failing = sum(a.error is not None for a in results)
    if not results:
        return "no failed rows to replay"
    if dry_run:
        return (
            f"dry run, nothing changed: {len(results) - failing} would apply, "
            f"{failing} would still fail"
        )
    return f"replayed {len(results)}: {len(results) - failing} applied, {failing} failed"


def outcome(item: Applied, dry_run: bool) -> str:
    """Return the line telling what replaying one row did (or would do)."""
    if item.error is not None:
        return f"seq {item.seq}: {'would still fail' if dry_run else 'still fails'}: {item.error}"
    # A dry run's new incident ids were rolled back: they name nothing.
    shown = "" if item.incident_id is None or dry_run else f"{item.incident_id} "
    details = [_ACTIONS.get(item.action, item.action).format(id=shown)]
    if item.notifications:
        details.append(f"{item.notifications} notification{'s' * (item.notifications != 1)}")
    group = f" [{item.receiver} {item.group_key}]" if item.group_key else ""
    return f"seq {item.seq}: {'would apply' if dry_run else 'applied'}: {', '.join(details)}{group}"


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
