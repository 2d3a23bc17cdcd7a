"""The silencer: keeps Alertmanager's silences in step with acknowledged incidents.

`receiver.silences.plan` decides (pure); this module reads the store and Alertmanager, applies the
plan, and resolves incidents whose silenced alerts are gone from Alertmanager. It runs every
`alertmanager.interval` and at once after an ack, unack or resolve. Alertmanager being down
is logged once per outage (and counted); the next pass retries everything, since the plan is
always recomputed from both sides.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from receiver import metricdefs as m
from receiver.ack.actions import ActionError, IncidentActions
from receiver.metrics import make_counter, make_gauge
from receiver.silences.alertmanager import AlertmanagerAPI, AlertmanagerError
from receiver.silences.plan import (
    AlertmanagerConfig,
    WantedSilence,
    due_to_resolve,
    missing_since,
    parse_silence,
    plan,
    silence_body,
    wanted,
)
from receiver.store import IntakeRules, Store, StoreUnavailable
from receiver.worker import PeriodicWorker

_T = TypeVar("_T")
MAX_ACKED = 5000  # acknowledged incidents looked at per pass; more is an outage of its own


class SilencerMetrics:
    """Silences held and failed passes, in the app's registry."""

    def __init__(self, registry: Any) -> None:
        self.silences = make_gauge(m.ALERTMANAGER_SILENCES, registry)
        self.changes = make_counter(m.ALERTMANAGER_SILENCE_CHANGES_TOTAL, registry)
        self.errors = make_counter(m.ALERTMANAGER_ERRORS_TOTAL, registry)
        self.last_success = make_gauge(m.ALERTMANAGER_LAST_SUCCESS_TIMESTAMP_SECONDS, registry)


@dataclass(frozen=True)
class PassResult:
    """What one pass changed."""

    created: int
    renewed: int
    expired: int
    resolved: list[int]


class Silencer(PeriodicWorker):
    """Reconcile silences; `run_once` for tests, `run` as the background task."""

    name = "silencer"
    outages = (AlertmanagerError, StoreUnavailable)
    outage_level = "error"
    outage_event = "silencer_failed"
    crash_event = "silencer_crashed"

    def __init__(
        self,
        config: AlertmanagerConfig,
        store: Store,
        api: AlertmanagerAPI,
        actions: IncidentActions,
        rules: IntakeRules,
        metrics: SilencerMetrics,
        logger: Any,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(config.interval, logger, clock)
        self.config, self.store, self.api, self.actions = config, store, api, actions
        self._rules, self.metrics = rules, metrics
        self._missing: dict[int, float] = {}
        self._rejections: set[tuple[tuple[int, str], str]] = set()

    async def run_once(self) -> PassResult:
        """One pass: diff, apply each change on its own, resolve incidents whose alerts left.

        A change Alertmanager rejects (a label name it refuses, say) fails alone: expiries are
        always attempted, the rest still applied. A change that failed for another reason is
        raised after the pass, so the outage is logged and the next pass retries it.
        """
        want = await self._wanted()
        have = [
            s
            for raw in await self.api.silences()
            if (s := parse_silence(raw, self.config.created_by)) is not None
        ]
        now = self._clock()
        todo = plan(want, have, now, self.config.silence_duration)
        failures: list[AlertmanagerError] = []
        expired = await self._each(
            todo.expire, lambda s: s.key, lambda s: self.api.expire(s.id), failures
        )
        created = await self._each(
            todo.create, lambda w: w.key, lambda w: self.api.create(self._body(w, now)), failures
        )
        renewed = await self._each(
            todo.renew,
            lambda p: p[1].key,
            lambda p: self.api.create(self._body(p[1], now, p[0].id)),
            failures,
        )
        for action, count in (("create", created), ("extend", renewed), ("expire", expired)):
            self.metrics.changes.labels(action).inc(count)
        self.metrics.silences.set(len(have) - expired + created)  # what Alertmanager holds now
        resolved = await self._resolve_gone(want)
        if todo or resolved:
            self._log.info(
                "silences_reconciled",
                created=created,
                extended=renewed,
                expired=expired,
                resolved=resolved,
            )
        if retry := [f for f in failures if not f.rejected]:
            raise retry[0]
        self.metrics.last_success.set(self._clock())
        return PassResult(created, renewed, expired, resolved)

    async def _each(
        self,
        items: list[_T],
        key: Callable[[_T], tuple[int, str]],
        call: Callable[[_T], Awaitable[object]],
        failures: list[AlertmanagerError],
    ) -> int:
        """Apply `call` to every item on its own; return how many succeeded."""
        done = 0
        for item in items:
            try:
                await call(item)
            except AlertmanagerError as exc:
                failures.append(exc)
                if exc.rejected:
                    self._rejected(key(item), exc)
            else:
                done += 1
        return done

    def _rejected(self, key: tuple[int, str], exc: AlertmanagerError) -> None:
        # Rejected the same way on every pass: one line per silence and reason, not per pass.
        self.metrics.changes.labels("rejected").inc()
        if (key, str(exc)) not in self._rejections:
            self._rejections.add((key, str(exc)))
            self._log.error(
                "silence_rejected", incident_id=key[0], fingerprint=key[1], reason=str(exc)
            )

    def _body(self, item: WantedSilence, now: float, existing: str | None = None) -> Any:
        url = self._rules.incident_url(item.incident_id)
        return silence_body(
            item, now, self.config.silence_duration, self.config.created_by, url, existing
        )

    async def _wanted(self) -> list[WantedSilence]:
        out: list[WantedSilence] = []
        for row in await self.store.incidents("acknowledged", {}, MAX_ACKED):
            detail = await self.store.incident(row.id)
            if detail is not None:
                out += wanted(detail, self.config.receivers)
        return out

    async def _resolve_gone(self, want: list[WantedSilence]) -> list[int]:
        silenced: dict[int, set[str]] = {}
        for item in want:
            silenced.setdefault(item.incident_id, set()).add(item.fingerprint)
        if not silenced:
            self._missing = {}
            return []
        now = self._clock()
        active = await self.api.active_fingerprints()
        self._missing = missing_since(self._missing, silenced, active, now)
        resolved = []
        for incident_id in due_to_resolve(self._missing, now, self.config.resolve_after_missing):
            try:
                await self.actions.resolve(incident_id, "alertmanager", "alertmanager")
            except ActionError as exc:  # resolved or deleted meanwhile: nothing left to do
                self._log.info("silencer_resolve_skipped", incident_id=incident_id, reason=str(exc))
            else:
                resolved.append(incident_id)
            self._missing.pop(incident_id, None)
        return resolved

    def failed(self, exc: BaseException) -> None:
        """Count every failed pass, not only the first of an outage."""
        self.metrics.errors.inc()
