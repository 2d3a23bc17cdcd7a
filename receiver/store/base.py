"""The store interface (a repository of groups, incidents and the outbox) and its row types.

The SQL is written once (scripts over `receiver.store.tx.Tx`, spelled per database by
`receiver.store.dialect`); what happens to a payload is decided outside the store
(`receiver.intake.decide`, `receiver.intake.apply`, `receiver.delivery.lanes`), so both
databases behave alike.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, ParamSpec, TypeVar

from receiver.delivery.lanes import Picker as Picker
from receiver.delivery.lanes import Wanted as Wanted
from receiver.delivery.lanes import priority as priority
from receiver.delivery.lanes import rate_limit as rate_limit
from receiver.escalation.plan import ActRequest, ActResult, Message, TimelineEvent
from receiver.incident_record import IncidentRecord, TimelineEntry
from receiver.intake.decide import IncidentMeta as IncidentMeta
from receiver.intake.decide import IncidentWrite as IncidentWrite
from receiver.intake.decide import IngestResult as IngestResult
from receiver.intake.decide import IntakeRules as IntakeRules
from receiver.intake.decide import Transition as Transition
from receiver.intake.payload import Payload

if TYPE_CHECKING:
    from receiver.store.tx import Script

P = ParamSpec("P")
T = TypeVar("T")

Outcome = Literal["sent", "pending", "failed", "unknown"]
STATES = ("triggered", "acknowledged", "resolved")
OUTBOX_STATES = ("pending", "sending", "sent", "failed", "unknown")
PruneTarget = Literal["incidents", "notifications"]  # see receiver.store.retention


class StoreError(Exception):
    """Base of the store's errors."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or is locked; callers answer 503 and retry later."""


@dataclass(frozen=True)
class OutboxRow:
    """A claimed outbox row (status `sending`)."""

    id: int
    incident_id: int
    channel: str
    kind: str
    recipient: str | None
    body: dict[str, Any]
    attempts: int
    at_most_once: bool
    created_at: float
    fallback_of: int | None
    # When an earlier attempt's request may have left (at-most-once): check before resending.
    started_at: float | None = None


@dataclass(frozen=True)
class Fallback:
    """A copy of a failed message to queue for the fallback channel."""

    channel: str
    at_most_once: bool
    rate_key: str | None


@dataclass(frozen=True)
class Finish:
    """How a delivery attempt ended; `fallback` asks for a copy on another channel."""

    outcome: Outcome
    now: float
    detail: str = ""
    next_attempt_at: float | None = None
    provider_id: str = ""
    fallback: Fallback | None = None
    thread: dict[str, str] = field(default_factory=dict)  # chat thread to reply into later
    # The request may have reached the provider: keep the row's start mark, so the next
    # attempt asks the provider first (at-most-once channels). False clears the mark.
    maybe_sent: bool = False


@dataclass(frozen=True)
class Recovered:
    """Rows found in `sending` past their deadline after a crash, all due again.

    `retried`: at-least-once rows, and at-most-once rows whose request provably never left;
    `unsure`: at-most-once rows whose request may have left (the worker checks with the
    provider before resending, or falls back).
    """

    retried: tuple[int, ...] = ()
    unsure: tuple[int, ...] = ()


@dataclass(frozen=True)
class Fired:
    """A due timer the worker handled: when it was due, and how many messages it queued."""

    incident_id: int
    due_at: float
    acted: bool
    queued: int


@dataclass(frozen=True)
class Outage:
    """The dead man's switch incident to open (or resolve), and the messages to queue then."""

    write: IncidentWrite
    messages: tuple[Message, ...]
    events: tuple[TimelineEvent, ...]


@dataclass(frozen=True)
class Stats:
    """Counts for the metrics gauges."""

    incidents: dict[str, int] = field(default_factory=dict)
    outbox: dict[str, int] = field(default_factory=dict)
    oldest_pending: float | None = None
    # PostgreSQL's inbox table: webhooks any replica accepted and none has applied yet.
    inbox_rows: int = 0
    inbox_oldest: float | None = None


class Store(abc.ABC):
    """Durable state: groups, incidents, alerts, outbox and delivery log."""

    # The database itself is in trouble: a script's batch fails whole instead of one item.
    fatal: ClassVar[tuple[type[Exception], ...]] = (StoreUnavailable,)

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply migrations."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections and threads."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""

    @abc.abstractmethod
    async def transaction(self, script: Script[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `script(tx, *args, **kwargs)` in one transaction, serialized like intake."""

    @abc.abstractmethod
    async def ingest(self, payload: Payload, now: float, rules: IntakeRules) -> IngestResult:
        """Apply a payload and queue its notifications in one durable transaction.

        Concurrent intakes may share a transaction (as `ingest_batch` items), each failing alone.
        """

    @abc.abstractmethod
    async def ingest_batch(
        self,
        items: Sequence[tuple[Payload, float]],
        rules: IntakeRules,
        mark: tuple[str, int] | None = None,
    ) -> list[IngestResult | Exception]:
        """Apply payloads in order (each with its `now`) in one transaction; a failing payload
        gets its exception in its slot while the others apply. `mark=(inbox_id, seq)` is saved
        in the same transaction (see `inbox_mark`), so no payload is ever applied twice."""

    @abc.abstractmethod
    async def inbox_mark(self, inbox_id: str) -> int:
        """Return the `seq` last saved with `ingest_batch` for an inbox (0 if none)."""

    @abc.abstractmethod
    async def recover(self, now: float) -> Recovered:
        """Make expired `sending` rows due again; see Recovered for the two kinds."""

    @abc.abstractmethod
    async def claim(
        self, now: float, wanted: Wanted, lease: float, max_messages: int, window: float
    ) -> list[OutboxRow]:
        """Mark due rows `sending` until now+lease and return them: most severe first per lane,
        within the free slots of `wanted`, rate limits applied."""

    @abc.abstractmethod
    async def start(self, row: OutboxRow, now: float) -> bool:
        """Commit that an at-most-once request is about to leave; False if the claim was lost."""

    @abc.abstractmethod
    async def finish(self, row: OutboxRow, result: Finish) -> bool:
        """Record an attempt's result; False when the claim was lost (fencing)."""

    @abc.abstractmethod
    async def incidents(
        self, state: str | None, labels: Mapping[str, str], limit: int
    ) -> list[IncidentRecord]:
        """Return incidents, newest first, filtered by state and common labels."""

    @abc.abstractmethod
    async def incident(self, incident_id: int) -> IncidentRecord | None:
        """Return one incident with its alerts and delivery log."""

    @abc.abstractmethod
    async def resolve(
        self, incident_id: int, now: float, by: str, rules: IntakeRules
    ) -> IngestResult | None:
        """Resolve an incident by hand and queue `resolved` messages; None if not found."""

    @abc.abstractmethod
    async def stats(self) -> Stats:
        """Return counts for the metrics gauges."""

    @abc.abstractmethod
    async def act(
        self, incident_id: int, request: ActRequest, now: float, rules: IntakeRules
    ) -> ActResult:
        """Apply an ack/unack/resolve under the incident's row lock, queueing its messages."""

    @abc.abstractmethod
    async def escalate_due(self, now: float, limit: int, rules: IntakeRules) -> list[Fired]:
        """Claim incidents whose timer is due (skipping locked ones) and feed them the engine."""

    @abc.abstractmethod
    async def next_timer(self) -> float | None:
        """Return the earliest escalation timer, if any."""

    @abc.abstractmethod
    async def overdue(self, now: float) -> tuple[int, float | None]:
        """Return how many open incidents have a timer before `now`, and the oldest one."""

    @abc.abstractmethod
    async def timeline(self, incident_id: int) -> list[TimelineEntry]:
        """Return the incident's timeline: events and delivery results, oldest first."""

    @abc.abstractmethod
    async def watchdog_beat(
        self, name: str, now: float, back: Outage, rules: IntakeRules
    ) -> int | None:
        """Record a heartbeat; when it ends an outage, resolve its incident and return its id."""

    @abc.abstractmethod
    async def watchdog_check(
        self, name: str, now: float, expect_every: float, outage: Outage, rules: IntakeRules
    ) -> int | None:
        """Open the outage incident once when the heartbeat is late; return its id if opened."""

    @abc.abstractmethod
    async def prune(self, target: PruneTarget, before: float, limit: int) -> int:
        """Delete up to `limit` expired rows of `target` older than `before`; return how many."""
