"""Typed application state keys shared by the server and the API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from receiver.ack.actions import IncidentActions
from receiver.config import ReceiverBase
from receiver.connections import ConnectionGuard
from receiver.delivery.channels import Channel
from receiver.delivery.digest import DigestTask
from receiver.delivery.outbox import OutboxWorker
from receiver.escalation.worker import EscalationWorker
from receiver.intake.supervisor import Intake
from receiver.intake.watchdog import WatchdogMonitor
from receiver.metrics import ReceiverMetrics
from receiver.silences.silencer import Silencer
from receiver.store import IntakeRules, Store
from receiver.store.retention import Retention

CONFIG = web.AppKey("config", ReceiverBase)
METRICS = web.AppKey("metrics", ReceiverMetrics)
RULES = web.AppKey("rules", IntakeRules)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
LOG: web.AppKey[Any] = web.AppKey("log")
STORE = web.AppKey("store", Store)
CHANNELS: web.AppKey[dict[str, Channel[Any]]] = web.AppKey("channels")
WORKER = web.AppKey("worker", OutboxWorker)
RUN_WORKER = web.AppKey("run_worker", bool)
PENDING = web.AppKey("pending", list[int])  # one-element counter of in-flight intakes
ACTIONS = web.AppKey("actions", IncidentActions)  # ack / unack / resolve, for every entry point
ESCALATOR = web.AppKey("escalator", EscalationWorker)
WATCHDOG: web.AppKey[WatchdogMonitor | None] = web.AppKey("watchdog")  # None: no watchdog
RETENTION = web.AppKey("retention", Retention)
DIGEST = web.AppKey("digest", DigestTask)
SILENCER: web.AppKey[Silencer | None] = web.AppKey("silencer")  # None: no alertmanager.url
GUARD = web.AppKey("connection_guard", ConnectionGuard)
INTAKE: web.AppKey[Intake | None] = web.AppKey("intake")  # None: applied in the request
