"""Mattermost channel: an incoming webhook with a coloured attachment and fields."""

from __future__ import annotations

from typing import Any, Literal

from receiver.delivery.channels import _http
from receiver.delivery.channels._chat import ChatWebhookChannel
from receiver.delivery.channels._payload import colour, facts, links
from receiver.delivery.channels.base import Notification
from receiver.delivery.templates import TemplateBlocks

_LINK_NAMES = {
    "ack": "Acknowledge",
    "resolve": "Resolve",
    "runbook": "Runbook",
    "incident": "Incident",
}


class MattermostConfig(_http.WebhookUrlConfig):
    """An incoming webhook, optionally overriding its channel, user name and icon."""

    type: Literal["mattermost"]
    blocks = TemplateBlocks("chat.j2", ("title", "text"))
    channel: str | None = None
    username: str | None = None
    icon_url: str | None = None


def _link_line(notification: Notification) -> str:
    urls = links(notification)
    if notification.kind == "resolved":
        urls = {k: v for k, v in urls.items() if k not in ("ack", "resolve")}
    shown = [f"[{name}]({urls[role]})" for role, name in _LINK_NAMES.items() if role in urls]
    return " · ".join(shown)


def _buttons(notification: Notification) -> list[dict[str, Any]]:
    """Return interactive buttons posting signed tokens back to the receiver, when configured."""
    if not notification.chat_callback_url or notification.kind in ("resolved", "digest"):
        return []
    wanted = [("resolve", "Resolve", notification.chat_resolve_token)]
    if notification.kind != "acknowledged":
        wanted.insert(0, ("ack", "Acknowledge", notification.chat_ack_token))
    return [
        {
            "id": action,
            "name": label,
            "integration": {"url": notification.chat_callback_url, "context": {"token": token}},
        }
        for action, label, token in wanted
        if token
    ]


def mattermost_message(
    notification: Notification, title: str, text: str, config: MattermostConfig
) -> dict[str, Any]:
    """Return the webhook body: one attachment with colour, fields and links."""
    link_line = _link_line(notification)
    attachment = {
        "fallback": title,
        "color": colour(notification),
        "title": title,
        "title_link": notification.incident_url or None,
        "text": "\n\n".join(part for part in (text, link_line) if part),
        "fields": [{"short": True, "title": k, "value": v} for k, v in facts(notification)],
    }
    buttons = _buttons(notification)
    if buttons:
        attachment["actions"] = buttons
    message: dict[str, Any] = {
        "attachments": [attachment],
        "props": {"maintwatch": {"incident_id": notification.incident_id, "id": notification.id}},
    }
    extras = {"channel": config.channel, "username": config.username, "icon_url": config.icon_url}
    message.update({key: value for key, value in extras.items() if value})
    return message


class MattermostChannel(ChatWebhookChannel[MattermostConfig]):
    """Post notifications to a Mattermost incoming webhook."""

    kind = "mattermost"
    config_type = MattermostConfig

    def message(self, notification: Notification, title: str, text: str) -> dict[str, Any]:
        """Return the webhook body."""
        return mattermost_message(notification, title, text, self.config)
