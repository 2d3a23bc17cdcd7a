"""File channel: append each notification as one JSON line, fsynced, to a configured path."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import os
from typing import Literal

from receiver.delivery.channels._payload import notification_payload
from receiver.delivery.channels.base import (
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryError,
    DeliveryReceipt,
    Notification,
)
from receiver.delivery.templates import Renderer, TemplateBlocks

# Errors a later attempt can get past without anyone changing the configuration.
_TRANSIENT = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EAGAIN, errno.EINTR})


class FileConfig(ChannelConfig):
    """Where to append."""

    type: Literal["file"]
    blocks = TemplateBlocks("text.j2", ("text",))
    path: str
    mode: int = 0o640  # permissions when the file is created


def append_line(path: str, line: bytes, mode: int) -> None:
    """Append one line and fsync it, so a delivery reported done is on disk."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, mode)
    try:
        # Concurrent deliveries (threads, or another receiver on the same file) must not see a
        # line half written: its last byte is not a newline yet, which would add a blank line.
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A process killed mid-write can leave a torn line without its newline (the kernel cuts
        # a write short on a fatal signal). Start on a fresh line so the torn fragment stays
        # alone and this record stays whole; the torn record itself is retried (at least once).
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        # O_APPEND makes each single write land at the end, even with other writers.
        written = os.write(fd, line)
        if written != len(line):
            # A regular file writes short when the filesystem ran out of space.
            raise OSError(errno.ENOSPC, f"short write ({written} of {len(line)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)


class FileChannel(Channel[FileConfig]):
    """Write notifications as JSON lines (the webhook channel's payload shape)."""

    kind = "file"
    config_type = FileConfig

    def __init__(self, config: FileConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.renderer = Renderer(config.blocks, config.template, self.context.logger, config.name)

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Append the notification or raise DeliveryError naming the file."""
        text = (await self.renderer.render_async(notification, self.context.clock()))["text"]
        payload = notification_payload(notification, text)
        line = json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            await asyncio.to_thread(append_line, self.config.path, line.encode(), self.config.mode)
        except OSError as exc:
            reason = f"cannot append to {self.config.path}: {exc.strerror or exc}"
            raise DeliveryError(reason, retryable=exc.errno in _TRANSIENT) from exc
        return DeliveryReceipt(provider_id=notification.id)
