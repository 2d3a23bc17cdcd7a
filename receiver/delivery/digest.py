"""The daily digest: info-tier incidents never page; once a day each route gets one message.

Pure parts pick the window (yesterday's digest time to today's, in the configured zone, so a
DST day is 23 or 25 hours long) and build one `digest` Notification per route. The task claims
`(route, local date)` in the store before sending, so a digest goes out once per day across
restarts and replicas (at most once: a crash mid-send loses that route's digest for the day).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from receiver.delivery.channels import AlertView, Channel, Notification
from receiver.web.ledger import Ledger
from receiver.web.settings import DigestConfig
from receiver.worker import PeriodicWorker

DEFAULT_ROUTE = "default"


@dataclass(frozen=True)
class Window:
    """The local date a digest is for and the [since, until) epoch range it covers."""

    day: date
    since: float
    until: float


def _at(day: date, at: time, zone: ZoneInfo) -> float:
    # A wall time inside a DST gap resolves with the pre-transition offset (PEP 495, fold=0).
    return datetime.combine(day, at, tzinfo=zone).timestamp()


def due_window(now: float, config: DigestConfig) -> Window | None:
    """Return today's window once today's digest time has passed, else None (pure)."""
    zone = ZoneInfo(config.timezone)
    today = datetime.fromtimestamp(now, UTC).astimezone(zone).date()
    until = _at(today, config.at, zone)
    if now < until:
        return None
    return Window(today, _at(today - timedelta(days=1), config.at, zone), until)


@dataclass(frozen=True)
class Digest:
    """One route's digest: incidents that fired in the window, and those still open."""

    route: str
    channels: tuple[str, ...]
    fired: tuple[Mapping[str, Any], ...]
    still_open: tuple[Mapping[str, Any], ...]


def _route(row: Mapping[str, Any]) -> str:
    # The last matched route decided: earlier ones had `continue: true` (a catch-all audit
    # route, say) and passed the incident on.
    routes = row.get("routes") or []
    return str(routes[-1]) if routes else DEFAULT_ROUTE


def build(
    rows: Iterable[Mapping[str, Any]], window: Window, channels: Sequence[str]
) -> list[Digest]:
    """Group info incidents by route; `channels` (if any) replace each route's own (pure)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_route(row), []).append(row)
    out = []
    for route, items in sorted(groups.items()):
        own = tuple(dict.fromkeys(c for r in items for c in r.get("channels", [])))
        fired = tuple(r for r in items if window.since <= r["opened_at"] < window.until)
        still_open = tuple(r for r in items if r["state"] != "resolved")
        out.append(Digest(route, tuple(channels) or own, fired, still_open))
    return out


def _name(row: Mapping[str, Any]) -> str:
    labels = {**row.get("common_labels", {}), **row.get("group_labels", {})}
    extra = " ".join(
        f"{k}={v}" for k, v in sorted(row.get("group_labels", {}).items()) if k != "alertname"
    )
    return " ".join(p for p in (labels.get("alertname", f"incident {row['id']}"), extra) if p)


def _description(row: Mapping[str, Any]) -> str:
    """Return the incident's description: shared by its alerts, else its first alert's."""
    found = row.get("common_annotations", {}).get("description", "")
    alerts = row.get("alerts", [])
    if not found and alerts:
        found = alerts[0].get("annotations", {}).get("description", "")
    return f": {found}" if found else ""


def _lines(title: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    if not rows:
        return []
    return [f"{title} ({len(rows)}):"] + [
        f"- #{r['id']} {_name(r)} [{r['state']}]{_description(r)}" for r in rows
    ]


def _alerts(rows: Iterable[Mapping[str, Any]]) -> tuple[AlertView, ...]:
    seen: dict[str, AlertView] = {}
    for row in rows:
        for a in row.get("alerts", []):
            seen[a["fingerprint"]] = AlertView(
                fingerprint=a["fingerprint"],
                status=a["status"],
                labels=a["labels"],
                annotations=a["annotations"],
                starts_at=datetime.fromtimestamp(a["starts_at"], UTC),
                ends_at=datetime.fromtimestamp(a["ends_at"], UTC) if a.get("ends_at") else None,
                generator_url=a.get("generator_url", ""),
            )
    return tuple(seen.values())


def notification(digest: Digest, window: Window) -> Notification:
    """Return the `digest` Notification for one route (pure)."""
    fired, still = len(digest.fired), len(digest.still_open)
    title = (
        f"Daily digest {window.day.isoformat()} ({digest.route}): {fired} fired, {still} still open"
    )
    lines = _lines("Fired since the last digest", digest.fired)
    lines += _lines("Still open", digest.still_open)
    summary = f"{fired} info incidents fired in the last day; {still} are still open."
    rows = {r["id"]: r for r in (*digest.fired, *digest.still_open)}
    return Notification(
        id=f"digest:{digest.route}:{window.day.isoformat()}",
        kind="digest",
        incident_id=0,
        incident_status="triggered" if still else "resolved",
        severity="info",
        title=title,
        group_labels={"route": digest.route},
        common_labels={},
        common_annotations={"summary": summary, "description": "\n".join(lines)},
        alerts=_alerts(rows.values()),
    )


class DigestTask(PeriodicWorker):
    """Send due digests; `run_once` is what the loop calls, tests call it with a moved clock."""

    name = "digest"

    def __init__(
        self,
        config: DigestConfig,
        ledger: Ledger,
        channels: Mapping[str, Channel[Any]],
        clock: Callable[[], float],
        logger: Any,
    ) -> None:
        super().__init__(config.poll_interval, logger, clock)
        self.config, self.ledger, self.channels = config, ledger, channels

    async def run_once(self) -> int:
        """Send every route's digest not yet sent today; return how many were sent."""
        now = self._clock()
        window = due_window(now, self.config)
        if window is None:
            return 0
        day = window.day.isoformat()
        if (await self.ledger.last_digests()).get("*", "") >= day:
            return 0  # all routes done for today: skip the query
        rows = await self.ledger.digest_incidents(window.since, window.until)
        sent = 0
        for digest in build(rows, window, self.config.channels):
            if not (digest.fired or digest.still_open):
                continue
            if await self.ledger.claim_digest(digest.route, day, now):
                await self._send(digest, window)
                sent += 1
        await self.ledger.claim_digest("*", day, now)
        return sent

    async def _send(self, digest: Digest, window: Window) -> None:
        message = notification(digest, window)
        for name in digest.channels:
            channel = self.channels.get(name)
            try:
                if channel is None:
                    raise LookupError(f"channel {name!r} is not configured")
                await channel.send(message)
            except Exception as exc:  # one channel failing must not stop the others
                self._log.error("digest_failed", route=digest.route, channel=name, error=str(exc))
                continue
            self._log.info(
                "digest_sent", route=digest.route, channel=name, day=window.day.isoformat()
            )
