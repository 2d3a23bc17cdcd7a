"""Console channel: one readable block per notification on stdout or stderr (used by the demo)."""

from __future__ import annotations

import sys
from typing import Literal

from receiver.delivery.channels.base import (
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryReceipt,
    Notification,
)
from receiver.delivery.templates import Renderer, TemplateBlocks


class ConsoleConfig(ChannelConfig):
    """Where to print."""

    type: Literal["console"]
    blocks = TemplateBlocks("text.j2", ("text",))
    stream: Literal["stdout", "stderr"] = "stdout"


class ConsoleChannel(Channel[ConsoleConfig]):
    """Print notifications as text blocks."""

    kind = "console"
    config_type = ConsoleConfig

    def __init__(self, config: ConsoleConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.renderer = Renderer(config.blocks, config.template, self.context.logger, config.name)

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Write the rendered text, followed by a blank line."""
        text = (await self.renderer.render_async(notification, self.context.clock()))["text"]
        # Looked up at send time so a redirected sys.stdout (tests, the demo) is honoured.
        stream = sys.stdout if self.config.stream == "stdout" else sys.stderr
        stream.write(f"{text}\n\n")
        stream.flush()
        return DeliveryReceipt(provider_id=notification.id)
