"""What a channel is asked to deliver: the notification and the alerts and person it names.

Plain data shared by the channels and the templates, so that neither imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

NotificationKind = Literal[
    "firing",  # first page for an incident, or an escalation step paging someone new
    "updated",  # more alerts joined an incident someone was already paged for
    "acknowledged",
    "unacknowledged",
    "resolved",
    "digest",  # the daily digest of info alerts
    "watchdog",  # the alerting pipeline's dead man's switch stopped arriving
]


@dataclass(frozen=True)
class AlertView:
    """One alert as a template sees it."""

    fingerprint: str
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str = ""


@dataclass(frozen=True)
class Recipient:
    """A person being paged (None on a Notification means: post to the channel itself)."""

    id: str
    name: str
    email: str | None = None
    phone: str | None = None
    chat: str | None = None
    timezone: str = "UTC"


@dataclass(frozen=True)
class Notification:
    """Everything a channel needs to render and send one message."""

    id: str  # outbox row id: stable across retries, used as an idempotency key
    kind: NotificationKind
    incident_id: int
    incident_status: Literal["triggered", "acknowledged", "resolved"]
    severity: str
    title: str  # e.g. "[FIRING:2] BackupTooOld (database ops)"
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    alerts: tuple[AlertView, ...]
    truncated_alerts: int = 0
    recipient: Recipient | None = None
    escalation_step: int = 0
    external_url: str = ""  # Alertmanager's externalURL
    incident_url: str = ""  # the receiver's page for this incident
    receiver_url: str = ""  # the receiver's external URL: relative runbook links resolve on it
    ack_url: str = ""  # signed single-use link (empty when links are not configured)
    resolve_url: str = ""
    reply_code: str = ""  # short code for SMS replies, e.g. "12"
    # Chat buttons that call back into the receiver (Mattermost): the callback URL and a signed
    # token per action; empty when callbacks are not configured.
    chat_callback_url: str = ""
    chat_ack_token: str = ""
    chat_resolve_token: str = ""
    acted_by: str = ""  # who acknowledged/resolved, for those kinds
    thread: dict[str, str] = field(default_factory=dict)  # per-channel thread refs to reply in
