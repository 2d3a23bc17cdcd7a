"""SMS channel: Twilio's Messages API through the real `twilio` client, at most once per send."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import aiohttp
from pydantic import AfterValidator, Field, HttpUrl, model_validator
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from maintwatch.configload import Duration, SecretFromFile
from maintwatch.httpauth import basic_auth
from receiver.delivery.channels._sms_text import fit, plain
from receiver.delivery.channels.base import (
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryError,
    DeliveryReceipt,
    Notification,
)
from receiver.delivery.templates import Renderer, TemplateBlocks, runbook_link

TWILIO_API = "https://api.twilio.com"
# Reconciling: messages read per page of Twilio's list, how far Twilio's clock may be behind
# ours (its timestamps have whole seconds), and how far past the start mark the reading goes.
LOOKUP_PAGE = 100
CLOCK_SKEW = 5.0
LOOKUP_MARGIN = 60.0
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
    blocks = TemplateBlocks("sms.j2", ("text",))
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
    """Map a Twilio or network failure, and say whether the message may have been created.

    Twilio answered 4xx: not created (429 and 5xx retry, other 4xx do not). No connection,
    DNS or TLS handshake failure: the request never left. Anything after it left (a 5xx, a
    dropped connection, no answer in time) may have created the message.
    """
    if isinstance(exc, TwilioRestException):
        retryable = exc.status == 429 or exc.status >= 500
        reason = f"Twilio error {exc.code} (HTTP {exc.status}): {exc.msg}"
        return DeliveryError(reason, retryable=retryable, maybe_sent=exc.status >= 500)
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        reason = f"could not connect to Twilio: {type(exc).__name__}"
        return DeliveryError(reason, retryable=True)
    if isinstance(exc, TimeoutError):
        return DeliveryError("timed out waiting for Twilio", retryable=True, maybe_sent=True)
    reason = f"connection to Twilio failed after the request left: {type(exc).__name__}"
    return DeliveryError(reason, retryable=True, maybe_sent=True)


def _lookup_error(exc: Exception) -> str:
    if isinstance(exc, TwilioRestException):
        return f"Twilio error {exc.code} (HTTP {exc.status})"
    if isinstance(exc, TwilioException) and len(exc.args) > 1:  # a page fetch: (text, response)
        return f"HTTP {getattr(exc.args[1], 'status_code', '?')}"
    return type(exc).__name__


class SmsChannel(Channel[SmsConfig]):
    """Send notifications as SMS via Twilio."""

    kind = "sms"
    config_type = SmsConfig
    at_most_once = True
    reconciles = True

    def __init__(self, config: SmsConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.renderer = Renderer(config.blocks, config.template, self.context.logger, config.name)
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

    async def _body(self, notification: Notification) -> str:
        head = (await self.renderer.render_async(notification, self.context.clock()))["text"]
        return sms_body(notification, head, self.config.max_segments)

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Send one message per number; the receipt holds the Twilio message SIDs."""
        numbers = self._numbers(notification)
        return await self._send_all(numbers, await self._body(notification), {})

    async def resend(self, notification: Notification, since: float) -> DeliveryReceipt:
        """Ask Twilio which numbers already have this message since `since`; send the rest."""
        numbers = self._numbers(notification)
        body = await self._body(notification)
        found = {}
        for number in numbers:
            sid = await self._find(number, body, since)
            if sid is not None:
                found[number] = sid
        return await self._send_all(numbers, body, found)

    async def _send_all(
        self, numbers: list[str], body: str, found: dict[str, str]
    ) -> DeliveryReceipt:
        sids = dict(found)
        for number in numbers:
            if number in sids:
                continue
            try:
                sids[number] = await self._send_one(number, body)
            except DeliveryError as exc:
                if sids:  # some numbers have it: a retry must ask Twilio first
                    raise DeliveryError(
                        exc.reason, retryable=exc.retryable, maybe_sent=True
                    ) from exc
                raise
        return DeliveryReceipt(provider_id=",".join(sids[n] for n in numbers), found=len(found))

    def _sender(self) -> dict[str, Any]:
        if self.config.sender:
            return {"from_": self.config.sender}
        return {"messaging_service_sid": self.config.messaging_service_sid}

    async def _send_one(self, number: str, body: str) -> str:
        try:
            message = await self.client.messages.create_async(
                to=number, body=body, **self._sender()
            )
        except (TwilioRestException, aiohttp.ClientError, TimeoutError) as exc:
            raise classify(exc) from exc
        return str(message.sid)

    async def _find(self, number: str, body: str, since: float) -> str | None:
        """Return the SID of a message with this body Twilio created for `number` since then.

        Twilio lists the newest first: read page by page until the messages are older than
        the start mark by more than a margin (queued ones may be listed out of order).
        """
        sender = {"from_": self.config.sender} if self.config.sender else {}
        earliest = datetime.fromtimestamp(since - CLOCK_SKEW, UTC)
        stop = earliest - timedelta(seconds=LOOKUP_MARGIN)
        try:
            async for message in await self.client.messages.stream_async(
                to=number, page_size=LOOKUP_PAGE, **sender
            ):
                created = message.date_created
                if created is not None and created < stop:
                    return None
                if message.body == body and created is not None and created >= earliest:
                    return str(message.sid)
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            # The lookup sends nothing: its failure leaves the message's fate open.
            raise DeliveryError(
                f"could not ask Twilio whether the message arrived: {_lookup_error(exc)}",
                retryable=True,
                maybe_sent=True,
            ) from exc
        return None
