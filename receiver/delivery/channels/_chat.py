"""The send path shared by chat webhooks: render title and text, build the body, POST it."""

from __future__ import annotations

import abc
import json
from typing import Any, TypeVar

from receiver.delivery.channels import _http
from receiver.delivery.channels.base import Channel, ChannelContext, DeliveryReceipt, Notification
from receiver.delivery.templates import Renderer

WC = TypeVar("WC", bound=_http.WebhookUrlConfig)


class ChatWebhookChannel(Channel[WC]):
    """A channel that posts one JSON message per notification to a webhook URL."""

    def __init__(self, config: WC, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.renderer = Renderer(config.blocks, config.template, self.context.logger, config.name)

    @abc.abstractmethod
    def message(self, notification: Notification, title: str, text: str) -> dict[str, Any]:
        """Return the platform's JSON body for one notification."""

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """POST the message; the HTTP status decides retryable or permanent failure."""
        now = self.context.clock()
        parts = await self.renderer.render_async(notification, now)
        body = json.dumps(self.message(notification, parts["title"], parts["text"])).encode()
        await _http.post(
            self.context.http,
            self.config.url,
            body,
            headers={"Content-Type": "application/json"},
            timeout=self.config.timeout,
            now=now,
        )
        return DeliveryReceipt()
