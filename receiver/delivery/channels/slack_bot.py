"""Slack through a bot token (`chat.postMessage`): one thread per incident, kept up to date.

Incoming webhooks (the `slack` channel) can only post new messages. With a bot token the
first page of an incident is posted to the channel and its `ts` comes back as the thread
reference; every later message about the incident (acknowledged, escalated, resolved) is a
reply in that thread, and the thread's first message is edited (`chat.update`) to show the
incident's state now, so the channel view never shows a stale "FIRING". Calls go through
Slack's own client (`slack_sdk`); `api_url` points it elsewhere only for tests and proxies.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import aiohttp
from pydantic import Field, SecretStr, model_validator
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from maintwatch.configload import Duration, SecretFromFile
from receiver.delivery.channels import _http
from receiver.delivery.channels.base import (
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryError,
    DeliveryReceipt,
    Notification,
)
from receiver.delivery.channels.slack import slack_message
from receiver.delivery.templates import Renderer, TemplateBlocks

SLACK_API = "https://slack.com/api/"
# slack_sdk logs request headers (the token) at DEBUG: give it a logger that never does.
_CLIENT_LOG = logging.getLogger("maintwatch.slack_bot.client")
_CLIENT_LOG.setLevel(logging.WARNING)
# Slack's answers that no retry can fix: the token, the channel or the bot's membership.
_PERMANENT = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "msg_too_long",
        "invalid_blocks",
        "invalid_attachments",
        "too_many_attachments",
    }
)


class SlackBotConfig(ChannelConfig):
    """A bot token with `chat:write` and the channel (ID such as C0123ABCD, or #name) to use."""

    type: Literal["slack_bot"]
    blocks = TemplateBlocks("chat.j2", ("title", "text"))
    token: SecretStr | None = None
    token_file: SecretFromFile | None = None
    channel: str = Field(min_length=1)
    timeout: Duration = Field(default=10.0, gt=0)
    api_url: str = Field(default=SLACK_API, pattern=r"^https?://")  # tests and proxies only

    @model_validator(mode="after")
    def _one_token(self) -> SlackBotConfig:
        """Require exactly one of token and token_file."""
        if (self.token is None) == (self.token_file is None):
            raise ValueError("set exactly one of token and token_file")
        return self

    def bot_token(self) -> str:
        """Return the token."""
        secret = self.token or self.token_file
        assert secret is not None  # the validator guarantees one is set
        return secret.get_secret_value()


def classify(exc: SlackApiError, now: float) -> DeliveryError:
    """Turn Slack's error answer into a DeliveryError with the right retry flag.

    Only the status and Slack's error code go into the reason: for a body that is not JSON (a
    proxy's error page, which may echo the request and its token) slack_sdk puts the body into
    the exception's message, and `exc.response` is then aiohttp's raw response.
    """
    response = exc.response
    status = int(getattr(response, "status_code", None) or getattr(response, "status", 0) or 0)
    data = getattr(response, "data", None)
    error = str(data.get("error", "")) if isinstance(data, dict) else "not a Slack API answer"
    wait = _http.retry_after((getattr(response, "headers", None) or {}).get("Retry-After"), now)
    reason = f"HTTP {status}" + (f": {error}" if error else "")
    retryable = (
        status == 429
        or error == "ratelimited"
        or (error not in _PERMANENT and (status >= 500 or bool(error)))
    )
    return DeliveryError(reason, retryable=retryable, retry_after=wait)


class SlackBotChannel(Channel[SlackBotConfig]):
    """Post pages to a channel and keep each incident in one thread."""

    kind = "slack_bot"
    config_type = SlackBotConfig

    def __init__(self, config: SlackBotConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.renderer = Renderer(config.blocks, config.template, context.logger, config.name)
        self.client = AsyncWebClient(
            token=config.bot_token(),
            base_url=config.api_url if config.api_url.endswith("/") else config.api_url + "/",
            timeout=max(1, round(config.timeout)),
            session=context.http,
            retry_handlers=[],  # the outbox retries, with backoff and Retry-After
            logger=_CLIENT_LOG,
        )

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Post the message (a reply when the incident has a thread); edit the thread's head."""
        now = self.context.clock()
        parts = await self.renderer.render_async(notification, now)
        message = slack_message(notification, parts["title"], parts["text"])
        thread = notification.thread
        channel, ts = thread.get("channel"), thread.get("ts")
        try:
            if not (channel and ts):
                posted = await self.client.chat_postMessage(channel=self.config.channel, **message)
                head = {"channel": str(posted["channel"]), "ts": str(posted["ts"])}
                return DeliveryReceipt(provider_id=head["ts"], thread=head)
            reply = await self.client.chat_postMessage(channel=channel, thread_ts=ts, **message)
        except SlackApiError as exc:
            raise classify(exc, now) from None
        except TimeoutError:
            reason = f"timed out after {self.config.timeout:g}s"
            raise DeliveryError(reason, retryable=True) from None
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"connection failed: {type(exc).__name__}", retryable=True) from exc
        await self._update_head(channel, ts, message, notification)
        return DeliveryReceipt(provider_id=str(reply["ts"]))

    async def _update_head(
        self, channel: str, ts: str, message: dict[str, Any], notification: Notification
    ) -> None:
        # The reply is delivered; an old head Slack will not edit any more only stays stale.
        try:
            await self.client.chat_update(channel=channel, ts=ts, **message)
        except SlackApiError as exc:
            reason = classify(exc, self.context.clock()).reason
        except (TimeoutError, aiohttp.ClientError) as exc:
            reason = f"connection failed: {type(exc).__name__}"
        else:
            return
        self.context.logger.warning(
            "slack_thread_head_not_updated",
            channel=self.name,
            incident_id=notification.incident_id,
            reason=reason,
        )
