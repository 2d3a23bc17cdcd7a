"""Channel registry: channel `type` in config → channel class (one module per channel)."""

from __future__ import annotations

from typing import Any

from receiver.delivery.channels.base import (
    AlertView,
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryError,
    DeliveryReceipt,
    Notification,
    Recipient,
)
from receiver.delivery.channels.console import ConsoleChannel
from receiver.delivery.channels.email import EmailChannel
from receiver.delivery.channels.file import FileChannel
from receiver.delivery.channels.mattermost import MattermostChannel
from receiver.delivery.channels.slack import SlackChannel
from receiver.delivery.channels.slack_bot import SlackBotChannel
from receiver.delivery.channels.sms import SmsChannel
from receiver.delivery.channels.teams import TeamsChannel
from receiver.delivery.channels.webhook import WebhookChannel

# Each channel module is listed once here; its class's `kind` is the config `type`.
_CLASSES: tuple[type[Channel[Any]], ...] = (
    ConsoleChannel,
    EmailChannel,
    FileChannel,
    MattermostChannel,
    SlackChannel,
    SlackBotChannel,
    SmsChannel,
    TeamsChannel,
    WebhookChannel,
)

REGISTRY: dict[str, type[Channel[Any]]] = {cls.kind: cls for cls in _CLASSES}

__all__ = [
    "REGISTRY",
    "AlertView",
    "Channel",
    "ChannelConfig",
    "ChannelContext",
    "DeliveryError",
    "DeliveryReceipt",
    "Notification",
    "Recipient",
]
