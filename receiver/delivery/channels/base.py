"""The channel interface: one module per channel type, registered by `kind`.

A channel turns a `Notification` (what to tell whom about which incident) into a delivery.
It raises `DeliveryError(retryable=...)` on failure; the outbox worker decides about retries,
backoff and fallbacks, so channels never retry on their own.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import aiohttp
from pydantic import ValidationInfo, field_validator

from maintwatch.configload import StrictModel
from receiver.delivery.messages import AlertView, Notification, NotificationKind, Recipient
from receiver.delivery.templates import TemplateBlocks, check_template

__all__ = [
    "AlertView",
    "Channel",
    "ChannelConfig",
    "ChannelContext",
    "DeliveryError",
    "DeliveryReceipt",
    "Notification",
    "NotificationKind",
    "Recipient",
]


@dataclass(frozen=True)
class DeliveryReceipt:
    """What the provider told us: its message id and, for chat, a thread to reply into."""

    provider_id: str = ""
    thread: dict[str, str] = field(default_factory=dict)
    # After a reconciliation: how many messages the provider already had (not sent again).
    found: int = 0


class DeliveryError(Exception):
    """A delivery failed; `retryable` says whether trying again later can succeed.

    `maybe_sent` says the request may have reached the provider (it failed after the request
    left: a dropped connection, a timeout waiting for the answer, a 5xx). An at-most-once
    channel is then not simply retried: the worker asks the provider, or falls back.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        maybe_sent: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.maybe_sent = maybe_sent


@dataclass
class ChannelContext:
    """What a channel may use besides its config; injected so tests can point it anywhere."""

    http: aiohttp.ClientSession  # shared session; tests point channels at local servers by URL
    logger: Any
    clock: Callable[[], float] = time.time


class ChannelConfig(StrictModel):
    """Fields every channel has; each channel type extends this with its own."""

    name: str
    type: str
    template: str | None = None  # path of a user template overriding the built-in one
    # The channel's built-in template and the blocks it renders: each channel module declares
    # its own, so the template code knows no channel.
    blocks: ClassVar[TemplateBlocks] = TemplateBlocks("text.j2", ("text",))

    @field_validator("template")
    @classmethod
    def _template_compiles(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Check at load time that an override template exists, compiles and fits the channel."""
        if value is not None:
            check_template(value, cls.blocks, str(info.data.get("type", "")))
        return value


CC = TypeVar("CC", bound=ChannelConfig)


class Channel(abc.ABC, Generic[CC]):
    """Deliver notifications through one configured channel."""

    kind: ClassVar[str]
    config_type: ClassVar[type[ChannelConfig]]
    at_most_once: ClassVar[bool] = False
    """True where a send that may have happened must not be repeated (SMS)."""
    reconciles: ClassVar[bool] = False
    """True where the provider can say whether an earlier request arrived (see `resend`)."""

    def __init__(self, config: CC, context: ChannelContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        """Return the configured channel name."""
        return self.config.name

    @abc.abstractmethod
    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Deliver one notification or raise DeliveryError."""

    async def resend(self, notification: Notification, since: float) -> DeliveryReceipt:
        """Deliver what the provider has no record of since `since` (a request that may have
        left then); what it has is not sent again. Only channels with `reconciles` do this."""
        raise DeliveryError(
            f"channel {self.name!r} cannot ask its provider what arrived", retryable=False
        )

    async def close(self) -> None:
        """Release sessions and connections."""
