"""Generic webhook channel: POST the documented JSON payload, optionally HMAC-signed."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Literal

from pydantic import Field, HttpUrl

from maintwatch.configload import Duration, SecretFromFile
from receiver.delivery.channels import _http
from receiver.delivery.channels._payload import notification_payload
from receiver.delivery.channels.base import (
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryReceipt,
    Notification,
)
from receiver.delivery.templates import Renderer, TemplateBlocks

SIGNATURE_HEADER = "X-Maintwatch-Signature"


class WebhookConfig(ChannelConfig):
    """Where to POST, with which extra headers, signed with which secret."""

    type: Literal["webhook"]
    blocks = TemplateBlocks("text.j2", ("text",))
    url: HttpUrl
    headers: dict[str, str] = Field(default_factory=dict)
    secret_file: SecretFromFile | None = None
    timeout: Duration = 10.0


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return the signature header value `t=<unix>,v1=<hex hmac-sha256 of "t.body">`."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookChannel(Channel[WebhookConfig]):
    """POST notifications as JSON to any HTTP endpoint."""

    kind = "webhook"
    config_type = WebhookConfig

    def __init__(self, config: WebhookConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.renderer = Renderer(config.blocks, config.template, self.context.logger, config.name)

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """POST the payload; the notification id goes in `Idempotency-Key` for deduplication."""
        now = self.context.clock()
        text = (await self.renderer.render_async(notification, now))["text"]
        body = json.dumps(notification_payload(notification, text), ensure_ascii=False).encode()
        headers = {
            **self.config.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": notification.id,
        }
        if self.config.secret_file is not None:
            secret = self.config.secret_file.get_secret_value().encode()
            headers[SIGNATURE_HEADER] = sign(secret, int(now), body)
        await _http.post(
            self.context.http,
            str(self.config.url),
            body,
            headers=headers,
            timeout=self.config.timeout,
            now=now,
            secrets=self.config.headers.values(),  # `Authorization: Bearer ${TOKEN}` and such
        )
        return DeliveryReceipt(provider_id=notification.id)
