"""Microsoft Teams channel: a Workflows webhook receiving an Adaptive Card."""

from __future__ import annotations

from typing import Any, Literal

from receiver.delivery.channels import _http
from receiver.delivery.channels._chat import ChatWebhookChannel
from receiver.delivery.channels._payload import facts, links
from receiver.delivery.channels.base import Notification
from receiver.delivery.templates import TemplateBlocks

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
_LINK_TITLES = {
    "ack": "Acknowledge",
    "resolve": "Resolve",
    "incident": "Incident",
    "runbook": "Runbook",
}
# Adaptive Cards have named colours, not hex ones.
_SEVERITY_COLOURS = {"critical": "Attention", "warning": "Warning", "info": "Accent"}


class TeamsConfig(_http.WebhookUrlConfig):
    """A Teams Workflows ("When a Teams webhook request is received") URL."""

    type: Literal["teams"]
    blocks = TemplateBlocks("chat.j2", ("title", "text"))


def _title_colour(notification: Notification) -> str:
    if notification.kind == "resolved":
        return "Good"
    if notification.kind == "acknowledged":
        return "Default"
    return _SEVERITY_COLOURS.get(notification.severity, "Default")


def markdown_escape(text: str) -> str:
    """Backslash-escape what makes a link in a TextBlock's Markdown (a CommonMark subset)."""
    return text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")


def adaptive_card(notification: Notification, title: str, text: str) -> dict[str, Any]:
    """Return the Adaptive Card (1.4) for one notification; label text never becomes a link."""
    title, text = markdown_escape(title), markdown_escape(text)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": title,
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
            "color": _title_colour(notification),
        },
    ]
    if text:
        body.append({"type": "TextBlock", "text": text, "wrap": True})
    body.append(
        {
            "type": "FactSet",
            "facts": [
                {"title": markdown_escape(key), "value": markdown_escape(value)}
                for key, value in facts(notification)
            ],
        }
    )
    urls = links(notification)
    if notification.kind == "resolved":
        urls = {k: v for k, v in urls.items() if k not in ("ack", "resolve")}
    actions = [
        {"type": "Action.OpenUrl", "title": name, "url": urls[role]}
        for role, name in _LINK_TITLES.items()
        if role in urls
    ]
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
        "actions": actions,
    }


def teams_message(notification: Notification, title: str, text: str) -> dict[str, Any]:
    """Return the Workflows webhook body wrapping the card."""
    card = adaptive_card(notification, title, text)
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": card}],
    }


class TeamsChannel(ChatWebhookChannel[TeamsConfig]):
    """Post notifications as Adaptive Cards to a Teams Workflows webhook."""

    kind = "teams"
    config_type = TeamsConfig

    def message(self, notification: Notification, title: str, text: str) -> dict[str, Any]:
        """Return the webhook body."""
        return teams_message(notification, title, text)
