"""SMS channel: Twilio's Messages API through the real `twilio` client, at most once per send."""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any, Literal

import aiohttp
from pydantic import AfterValidator, Field, HttpUrl, model_validator
from twilio.base.exceptions import TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from maintwatch.configload import Duration, SecretFromFile
from maintwatch.httpauth import basic_auth
from receiver.channels._sms_text import fit, plain
from receiver.channels.base import (
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryError,
    DeliveryReceipt,
    Notification,
)
from receiver.templates import Renderer, runbook_link

TWILIO_API = "https://api.twilio.com"
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
# Kinds that ask the person to act; only these carry the reply hint and the ack link.
_ACTIONABLE = frozenset({"firing", "updated", "unacknowledged", "watchdog"})


def check_e164(value: str) -> str:
    """Return `value` if it is an E.164 number, else raise ValueError saying what is expected."""
    if not _E164.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an E.164 phone number: write + then the country code and "
            "number, digits only, e.g. +14155550100"
        )
    return value


E164 = Annotated[str, AfterValidator(check_e164)]


class SmsConfig(ChannelConfig):
    """Twilio credentials, the sender, default recipients and the message size budget."""

    type: Literal["sms"]
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token_file: SecretFromFile
    sender: E164 | None = Field(default=None, alias="from")
    messaging_service_sid: str | None = Field(default=None, pattern=r"^MG[0-9a-fA-F]{32}$")
    to: list[E164] = Field(default_factory=list)  # used when a notification has no recipient
    max_segments: int = Field(default=2, ge=1, le=10)
    timeout: Duration = 15.0
    api_base_url: HttpUrl = HttpUrl(TWILIO_API)  # only tests and proxies change this

    @model_validator(mode="after")
    def _one_sender(self) -> SmsConfig:
        """Require exactly one of from and messaging_service_sid."""
        if (self.sender is None) == (self.messaging_service_sid is None):
            raise ValueError("set exactly one of from and messaging_service_sid")
        return self


class TwilioHttp(AsyncHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """Twilio's async HTTP hook on our shared aiohttp session, with a replaceable base URL."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, timeout: float) -> None:
        super().__init__(logging.getLogger("twilio.http"), True, timeout)
        self.session = session
        self.base_url = base_url.rstrip("/")

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - twilio's HttpClient signature
        allow_redirects: bool = False,
    ) -> Response:
        """Send one API request and wrap the answer the way twilio's client expects."""
        if url.startswith(TWILIO_API):
            url = self.base_url + url[len(TWILIO_API) :]
        headers = dict(headers or {})
        if auth:
            headers["Authorization"] = basic_auth(auth[0], auth[1])
        async with self.session.request(
            method,
            url,
            params=params,  # type: ignore[arg-type]  # twilio passes str/int values only
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            allow_redirects=allow_redirects,
        ) as response:
            return Response(response.status, await response.text(), response.headers)


KEEP_TEXT = 80  # characters of the text a link may not cut into (severity, name, the value)


def sms_body(notification: Notification, head: str, max_segments: int) -> str:
    """Return the essentials, the reply hint, then the ack and runbook links that fit."""
    hint = ack = ""
    if notification.kind in _ACTIONABLE:
        if notification.reply_code:
            hint = f'Reply "{notification.reply_code} ack"'
        ack = notification.ack_url
    runbook = runbook_link(notification)
    head = plain(head)
    # The value first, then the ack link (worth cutting the text's tail for), then the runbook.
    attempts = ((f"{ack} {runbook}".strip(), len(head)), (ack, KEEP_TEXT), (runbook, KEEP_TEXT))
    for link, keep in attempts:
        text = fit(head, hint, link, max_segments, keep) if link else ""
        if link and text.endswith(link):
            return text
    return fit(head, hint, "", max_segments)


def classify(exc: Exception) -> DeliveryError:
    """Map a Twilio or network failure: 429/5xx/timeouts retry, other 4xx do not."""
    if isinstance(exc, TwilioRestException):
        retryable = exc.status == 429 or exc.status >= 500
        reason = f"Twilio error {exc.code} (HTTP {exc.status}): {exc.msg}"
        return DeliveryError(reason, retryable=retryable)
    if isinstance(exc, TimeoutError):
        return DeliveryError("timed out talking to Twilio", retryable=True)
    return DeliveryError(f"connection to Twilio failed: {type(exc).__name__}", retryable=True)


class SmsChannel(Channel[SmsConfig]):
    """Send notifications as SMS via Twilio."""

    kind = "sms"
    config_type = SmsConfig
    at_most_once = True

    def __init__(self, config: SmsConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.renderer = Renderer(self.kind, config.template, self.context.logger, config.name)
        http = TwilioHttp(context.http, str(config.api_base_url), config.timeout)
        self.client = Client(
            config.account_sid, config.auth_token_file.get_secret_value(), http_client=http
        )

    def _numbers(self, notification: Notification) -> list[str]:
        person = notification.recipient
        if person is None:
            if not self.config.to:
                raise DeliveryError("no recipient and no `to` numbers configured", retryable=False)
            return list(self.config.to)
        if not person.phone:
            raise DeliveryError(f"recipient {person.id} has no phone number", retryable=False)
        try:
            return [check_e164(person.phone)]
        except ValueError as exc:
            raise DeliveryError(f"recipient {person.id}: {exc}", retryable=False) from None

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Send one message per number; the receipt holds the Twilio message SIDs."""
        numbers = self._numbers(notification)
        head = self.renderer.render(notification, self.context.clock())["text"]
        body = sms_body(notification, head, self.config.max_segments)
        sids = [await self._send_one(number, body) for number in numbers]
        return DeliveryReceipt(provider_id=",".join(sids))

    async def _send_one(self, number: str, body: str) -> str:
        sender: dict[str, Any] = (
            {"from_": self.config.sender}
            if self.config.sender
            else {"messaging_service_sid": self.config.messaging_service_sid}
        )
        try:
            message = await self.client.messages.create_async(to=number, body=body, **sender)
        except (TwilioRestException, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc) from exc
        return str(message.sid)
