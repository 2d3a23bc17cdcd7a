"""Channel registry: channel `type` in config → channel class (one module per channel)."""

from __future__ import annotations

from typing import Any

from receiver.channels.base import (
    AlertView,
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryError,
    DeliveryReceipt,
    Notification,
    Recipient,
)
from receiver.channels.console import ConsoleChannel
from receiver.channels.email import EmailChannel
from receiver.channels.file import FileChannel
from receiver.channels.mattermost import MattermostChannel
from receiver.channels.slack import SlackChannel
from receiver.channels.slack_bot import SlackBotChannel
from receiver.channels.sms import SmsChannel
from receiver.channels.teams import TeamsChannel
from receiver.channels.webhook import WebhookChannel

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
