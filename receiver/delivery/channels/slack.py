"""Slack channel: an incoming-webhook message in Block Kit, coloured by severity and status."""

from __future__ import annotations

from typing import Any, Literal

from receiver.delivery.channels import _http
from receiver.delivery.channels._chat import ChatWebhookChannel
from receiver.delivery.channels._payload import colour, facts, links
from receiver.delivery.channels.base import Notification
from receiver.delivery.templates import TemplateBlocks

# Block Kit limits: header text 150 chars, section text 3000, field text 2000, 10 fields.
_HEADER_MAX = 150
_TEXT_MAX = 3000
_FIELD_MAX = 2000
_FIELDS_MAX = 10
_LINK_NAMES = {"runbook": "Runbook", "incident": "Incident", "alertmanager": "Alertmanager"}


class SlackConfig(_http.WebhookUrlConfig):
    """An incoming webhook URL (`webhook_url: ${SLACK_WEBHOOK}` or `webhook_url_file`)."""

    type: Literal["slack"]
    blocks = TemplateBlocks("chat.j2", ("title", "text"))


def mrkdwn_escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _buttons(notification: Notification) -> list[dict[str, Any]]:
    """Return Ack/Resolve buttons; `value` is `<action>:<incident id>` for the click handler."""
    # A resolved incident needs no action; a digest or watchdog message is about no one incident.
    if notification.kind in ("resolved", "digest", "watchdog"):
        return []
    wanted: list[tuple[str, str, str | None]] = [("resolve", "Resolve", None)]
    if notification.kind != "acknowledged":
        wanted.insert(0, ("ack", "Acknowledge", "primary"))
    buttons: list[dict[str, Any]] = []
    for action, label, style in wanted:
        button: dict[str, Any] = {
            "type": "button",
            "action_id": f"maintwatch_{action}",
            "text": {"type": "plain_text", "text": label},
            "value": f"{action}:{notification.incident_id}",
        }
        if style:
            button["style"] = style
        buttons.append(button)
    return buttons


def slack_blocks(notification: Notification, title: str, text: str) -> list[dict[str, Any]]:
    """Return the Block Kit blocks: header, text, fields, links and buttons."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(title, _HEADER_MAX)}},
    ]
    if text:
        body = _clip(mrkdwn_escape(text), _TEXT_MAX)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": body}})
    fields = [
        {"type": "mrkdwn", "text": _clip(f"*{key}*\n{mrkdwn_escape(value)}", _FIELD_MAX)}
        for key, value in facts(notification)[:_FIELDS_MAX]
    ]
    blocks.append({"type": "section", "fields": fields})
    urls = links(notification)
    shown = [f"<{urls[role]}|{name}>" for role, name in _LINK_NAMES.items() if role in urls]
    if shown:
        line = {"type": "mrkdwn", "text": " · ".join(shown)}
        blocks.append({"type": "context", "elements": [line]})
    buttons = _buttons(notification)
    if buttons:
        blocks.append({"type": "actions", "block_id": "maintwatch_actions", "elements": buttons})
    return blocks


def slack_message(notification: Notification, title: str, text: str) -> dict[str, Any]:
    """Return the webhook body; blocks sit in an attachment so the colour bar shows."""
    return {
        # The preview and the fallback for old clients. Slack parses it as mrkdwn too: unescaped,
        # an alert name like `<!channel>` would notify everyone.
        "text": mrkdwn_escape(title),
        "attachments": [
            {"color": colour(notification), "blocks": slack_blocks(notification, title, text)}
        ],
    }


def _after_click_blocks(blocks: list[Any], action: str, note: str) -> list[Any]:
    out: list[Any] = []
    for block in blocks:
        if isinstance(block, dict) and block.get("block_id") == "maintwatch_actions":
            if action == "resolve":
                continue  # nothing left to do on a resolved incident
            kept = [
                e for e in block.get("elements", []) if e.get("value", "").split(":")[0] != action
            ]
            if kept:
                out.append({**block, "elements": kept})
            continue
        out.append(block)
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
    return out


def after_click(message: dict[str, Any], action: str, note: str) -> dict[str, Any]:
    """Return the `response_url` body that replaces a clicked message: the buttons that no
    longer apply removed (Acknowledge after an ack; all after a resolve) and `note` added."""
    body: dict[str, Any] = {"replace_original": True, "text": message.get("text", "")}
    attachments = message.get("attachments")
    if isinstance(attachments, list) and attachments:
        body["attachments"] = [
            {**a, "blocks": _after_click_blocks(a.get("blocks", []), action, note)}
            if isinstance(a, dict) and isinstance(a.get("blocks"), list)
            else a
            for a in attachments
        ]
    else:
        blocks = message.get("blocks")
        body["blocks"] = _after_click_blocks(
            blocks if isinstance(blocks, list) else [], action, note
        )
    return body


class SlackChannel(ChatWebhookChannel[SlackConfig]):
    """Post notifications to a Slack incoming webhook."""

    kind = "slack"
    config_type = SlackConfig

    def message(self, notification: Notification, title: str, text: str) -> dict[str, Any]:
        """Return the webhook body."""
        return slack_message(notification, title, text)
