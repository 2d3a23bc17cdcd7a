"""What a webhook does to the state, written once over a store transaction (either database).

Read the group without a lock and decide: most deliveries (repeat_interval, the HA twin's copy)
change nothing and end there, writing nothing. A change takes the group's row lock, reads again
and decides again (another replica may have written meanwhile), then writes the incident, the
alerts and either the notifications or the escalation engine's update.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from receiver.escalation import transactions as escalation_tx
from receiver.intake.decide import IngestResult, IntakeRules, Transition, decide, outbox_entries
from receiver.intake.inbox import Row as InboxRow
from receiver.intake.merge import GroupState
from receiver.intake.payload import Payload
from receiver.intake.protocol import error_text
from receiver.store import escalation_sql as repo
from receiver.store import groups, inbox_sql, rows
from receiver.store.gather import Gathering
from receiver.store.groups import Group, Key
from receiver.store.tx import Row, Tx

Item = tuple[Payload, float, IntakeRules]


@dataclass
class Ahead:
    """What a batch read and took before its first payload, so that its payloads need fewer
    answers from the database one by one (each is a network round trip with PostgreSQL).

    `groups`: each group of the batch as it was before the batch (None: none yet), for the
    first of its payloads only. `group_ids`/`incident_ids`: ids taken ahead for new rows, so a
    new group's row is written once, already marked.
    """

    groups: dict[Key, Group | None]
    group_ids: list[int] = field(default_factory=list)
    incident_ids: list[int] = field(default_factory=list)

    def incident_id(self) -> int | None:
        """Return a new incident's id taken ahead (None: the insert returns one)."""
        return self.incident_ids.pop() if self.incident_ids else None


async def read_ahead(tx: Tx, items: Sequence[Item]) -> Ahead:
    """Read the batch's groups in one query and take enough ids for the rows it may create."""
    ahead = Ahead(await groups.load_many(tx, {(p.receiver, p.groupKey) for p, _, _ in items}))
    # A payload makes at most one group and one incident; one with an open one makes none.
    known = ahead.groups
    may_open = sum(
        1
        for p, _, _ in items
        if (g := known[(p.receiver, p.groupKey)]) is None or g.incident is None
    )
    if may_open:
        taken = await groups.take_ids(tx, may_open)
        # Reversed: pop() hands them out in the order they were taken.
        ahead.group_ids = [g for g, _ in reversed(taken)]
        ahead.incident_ids = [i for _, i in reversed(taken)]
    return ahead


async def apply(
    tx: Tx, payload: Payload, now: float, rules: IntakeRules, ahead: Ahead | None = None
) -> IngestResult:
    """Apply one payload."""
    key = (payload.receiver, payload.groupKey)
    ahead = ahead or Ahead({})
    if key in ahead.groups:
        seen = ahead.groups.pop(key)  # the group's later payloads read what this one wrote
    else:
        seen = await groups.load(tx, key)
    transition = _decide(seen, payload, now, rules)
    if not transition.merge.changed:
        return IngestResult("none")
    marked = seen is None and bool(ahead.group_ids)
    group: Group | None
    if marked:
        # A new group with its ids taken ahead: its row is written once, already marked.
        new_id = ahead.incident_id() if transition.incident is not None else None
        open_id = _open_id(transition, new_id)
        group = await groups.add_marked(
            tx, key, ahead.group_ids.pop(), transition.merge.marks, open_id
        )
    else:
        group = seen if seen is not None and not tx.dialect.row_locks else None
        if seen is None:
            # A new row is ours alone until commit.
            group = await groups.add(tx, key)
        if group is None:  # another writer may have got there first: decide under the lock
            group = await groups.relock(tx, key, seen)
            transition = _decide(group, payload, now, rules)
            if not transition.merge.changed:
                return IngestResult("none")
        has_new = transition.incident is not None and group.incident is None
        new_id = ahead.incident_id() if has_new else None
    write = transition.incident
    incident_id = None
    if write is not None:
        alerts = list(transition.merge.alerts.values())
        incident_id = await groups.write_incident(tx, group, key, write, alerts, now, new_id)
    if not marked:
        await groups.mark(tx, group, transition.merge.marks, _open_id(transition, incident_id))
    queued, timer = 0, None
    if incident_id is not None:
        queued, timer = await queue(tx, incident_id, transition, now, rules, group.incident)
    return IngestResult(transition.merge.action, incident_id, queued, timer)


def _open_id(transition: Transition, incident_id: int | None) -> int | None:
    # The group's open incident after this payload: none once it resolved.
    return None if transition.merge.action == "resolve" else incident_id


def _decide(group: Group | None, payload: Payload, now: float, rules: IntakeRules) -> Transition:
    if group is None:
        state, meta = GroupState(), None
    else:
        state, meta = rows.group_from(group.row["marks"], group.incident, group.alerts)
    return decide(state, meta, payload, now, rules)


async def queue(
    tx: Tx,
    incident_id: int,
    transition: Transition,
    now: float,
    rules: IntakeRules,
    incident: Row | None = None,
) -> tuple[int, float | None]:
    """Queue an incident change's messages, or hand it to the escalation engine's policy.

    Return the messages queued and the escalation timer set, if any.
    """
    assert transition.incident is not None
    escalated = await escalation_tx.intake(tx, incident, incident_id, transition, now, rules)
    if escalated is not None:
        return escalated
    planned = outbox_entries(transition, incident_id, transition.incident.state, rules)
    queued = await repo.queue(tx, incident_id, planned, now, rules)
    if any(p.kind == "firing" for p in planned):
        await repo.mark_paged(tx, incident_id)
    return queued, None


async def apply_batch(
    tx: Tx,
    items: Sequence[Item],
    mark: tuple[str, int] | None,
    isolated: bool,
    fatal: tuple[type[Exception], ...],
) -> list[IngestResult | Exception]:
    """Apply payloads in one transaction; `isolated`: a savepoint each, so one fails alone.

    With row locks, groups are taken in key order (stable: one group's payloads keep theirs),
    so two replicas' batches cannot wait on each other in a cycle. `fatal` errors (the
    database itself) fail the whole batch.
    """
    order = list(range(len(items)))
    if tx.dialect.row_locks:
        order.sort(key=lambda i: (items[i][0].receiver, items[i][0].groupKey))
    out: list[IngestResult | Exception | None] = [None] * len(items)
    if not isolated:
        # Optimistic: reads ahead, and each kind of row written once for the whole batch.
        ahead = await read_ahead(tx, items)
        gathering = Gathering(tx)
        for i in order:
            payload, now, rules = items[i]
            out[i] = await apply(gathering, payload, now, rules, ahead)
        await gathering.flush()
    else:
        # The redo goes one by one, each payload under its savepoint.
        for i in order:
            payload, now, rules = items[i]
            await tx.execute("SAVEPOINT intake")
            try:
                out[i] = await apply(tx, payload, now, rules)
            except fatal:
                raise
            except Exception as exc:  # handed to that payload's caller, not swallowed
                await tx.execute("ROLLBACK TO SAVEPOINT intake")
                out[i] = exc
            await tx.execute("RELEASE SAVEPOINT intake")
    if mark is not None:
        await groups.save_mark(tx, *mark)
    return [r for r in out if r is not None]


async def resolve(
    tx: Tx, incident_id: int, now: float, by: str, rules: IntakeRules
) -> IngestResult | None:
    """Resolve an incident by hand and queue its `resolved` messages; None if not found."""
    row = await repo.lock_incident(tx, incident_id)
    if row is None:
        return None
    if row["state"] == "resolved":
        return IngestResult("none", incident_id)
    alerts = await repo.alerts(tx, incident_id)
    await groups.resolve(tx, incident_id, now, by)
    transition = rows.manual_resolve(row, alerts, now)
    queued, _ = await queue(tx, incident_id, transition, now, rules)
    return IngestResult("resolve", incident_id, queued)


Prepared = Payload | IngestResult | Exception  # to apply / settled without the store / failed
Taken = list[tuple[InboxRow, Payload | None, IngestResult | Exception]]


async def apply_inbox(
    tx: Tx,
    limit: int,
    prepare: Callable[[InboxRow], Prepared],
    rules: IntakeRules,
    now: float,
    isolated: bool,
    fatal: tuple[type[Exception], ...],
) -> Taken | None:
    """Take the oldest inbox rows, apply them and delete them, all in this transaction.

    None: another replica's applier holds the inbox lock. Rows that fail (before or while
    applying) move to inbox_failed here too, so a poison row never holds later ones back.
    """
    found = await inbox_sql.take(tx, limit)
    if found is None:
        return None
    rows = [InboxRow(int(r["seq"]), float(r["received_at"]), bytes(r["body"])) for r in found]
    taken = await apply_rows(tx, rows, prepare, rules, None, isolated, fatal)
    if rows:
        await inbox_sql.consume(tx, [r.seq for r in rows], failures(taken), now)
    return taken


async def apply_rows(
    tx: Tx,
    rows: Sequence[InboxRow],
    prepare: Callable[[InboxRow], Prepared],
    rules: IntakeRules,
    now: float | None,
    isolated: bool,
    fatal: tuple[type[Exception], ...],
) -> Taken:
    """Prepare and apply inbox rows in this transaction, each at `now` (None: its received_at)."""
    prepared = [prepare(row) for row in rows]
    items = [
        (p, r.received_at if now is None else now, rules)
        for p, r in zip(prepared, rows, strict=True)
        if isinstance(p, Payload)
    ]
    return settle(rows, prepared, await apply_batch(tx, items, None, isolated, fatal))


def settle(
    rows: Sequence[InboxRow],
    prepared: Sequence[Prepared],
    results: Sequence[IngestResult | Exception],
) -> Taken:
    """Pair each row with its payload and outcome: the store's `results` (in order) for the
    rows that were payloads to apply, the prepared outcome for the others."""
    applied = iter(results)
    taken: Taken = []
    for row, item in zip(rows, prepared, strict=True):
        if isinstance(item, Payload):
            taken.append((row, item, next(applied)))
        else:
            taken.append((row, None, item))
    return taken


def failures(taken: Taken) -> list[tuple[int, str]]:
    """Return the seq and error of each row that failed (before or while applying)."""
    return [
        (row.seq, error_text(result)) for row, _, result in taken if isinstance(result, Exception)
    ]
