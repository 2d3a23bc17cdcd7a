"""Acknowledge, unacknowledge and resolve incidents: the one entry point every ack path calls.

The API, signed links, SMS replies, chat buttons and the web page all go through
`IncidentActions`, so each action is applied the same way: under the incident's row lock, fed
to the escalation engine, with its messages queued and its timeline entry written in the
same transaction.

Exceptions: `ActionError` is the base; `IncidentNotFound` (no such incident) and
`InvalidTransition` (e.g. acknowledging a resolved incident) carry a human-readable reason.
The store's `StoreUnavailable` passes through unchanged (callers answer 503).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from receiver.escalation.plan import ActRequest, ActResult, Verb
from receiver.incident_record import IncidentRecord
from receiver.store import IntakeRules, Store

# "alertmanager": the silencer resolving an incident whose silenced alerts ended.
VIAS = frozenset({"alertmanager", "api", "link", "sms", "slack", "mattermost", "web"})


class ActionError(Exception):
    """Base of the action errors."""


class IncidentNotFound(ActionError):
    """No incident has this id."""


class InvalidTransition(ActionError):
    """The incident's state does not allow the action (e.g. ack after resolve)."""


@dataclass(frozen=True)
class IncidentSummary:
    """What an action did: the incident as it now reads, whether the action `changed` it (False
    when it already was in that state), and how many messages it queued."""

    incident: IncidentRecord
    changed: bool
    notifications: int


class IncidentActions:
    """Apply people's actions to incidents through the store."""

    def __init__(
        self,
        store: Store,
        rules: IntakeRules,
        clock: Callable[[], float],
        logger: Any,
        wake: Callable[[], None] = lambda: None,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self._store, self._rules, self._clock, self._log = store, rules, clock, logger
        self._wake = wake
        self._changed = changed  # told of every state change (the silencer follows acks)

    async def ack(self, incident_id: int, actor: str, via: str) -> IncidentSummary:
        """Acknowledge: escalation stops (until the ack expires, if the policy says so)."""
        return await self._act(incident_id, ActRequest("ack", actor, via))

    async def unack(self, incident_id: int, actor: str, via: str) -> IncidentSummary:
        """Withdraw an acknowledgement: escalation resumes at the current step."""
        return await self._act(incident_id, ActRequest("unack", actor, via))

    async def resolve(self, incident_id: int, actor: str, via: str) -> IncidentSummary:
        """Resolve by hand: escalation stops and those paged hear of it."""
        return await self._act(incident_id, ActRequest("resolve", actor, via))

    async def _act(self, incident_id: int, request: ActRequest) -> IncidentSummary:
        if request.via not in VIAS:
            raise ValueError(f"via: expected one of {', '.join(sorted(VIAS))}, got {request.via!r}")
        if not request.actor:
            raise ValueError("actor: must not be empty")
        result = await self._store.act(incident_id, request, self._clock(), self._rules)
        if not result.found:
            raise IncidentNotFound(f"incident {incident_id} does not exist")
        if not result.allowed:
            raise InvalidTransition(f"incident {incident_id}: {result.reason}")
        if result.queued:
            self._wake()
        summary = _summary(result)
        if summary.changed:
            self._changed()
        self._log.info(
            _EVENTS[request.verb],
            incident_id=incident_id,
            by=request.actor,
            via=request.via,
            changed=summary.changed,
            notifications=summary.notifications,
        )
        return summary


_EVENTS: dict[Verb, str] = {
    "ack": "incident_acknowledged",
    "unack": "incident_unacknowledged",
    "resolve": "incident_resolved",
}


def _summary(result: ActResult) -> IncidentSummary:
    return IncidentSummary(IncidentRecord.from_row(result.incident), result.changed, result.queued)
