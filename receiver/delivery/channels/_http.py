"""HTTP delivery shared by the webhook-style channels: one POST, its failure classified."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr, model_validator

from maintwatch.configload import Duration, SecretFromFile
from receiver.delivery.channels.base import ChannelConfig, DeliveryError
from receiver.numbers import parse_uint

# Statuses where the same request can succeed later (timeouts, throttling, server trouble).
_RETRYABLE = frozenset({408, 425, 429})


class WebhookUrlConfig(ChannelConfig):
    """A chat webhook: its URL is a secret, given inline (`${ENV}`) or in a file."""

    webhook_url: SecretStr | None = None
    webhook_url_file: SecretFromFile | None = None
    timeout: Duration = 10.0

    @model_validator(mode="after")
    def _one_url(self) -> WebhookUrlConfig:
        """Require exactly one of webhook_url and webhook_url_file."""
        if (self.webhook_url is None) == (self.webhook_url_file is None):
            raise ValueError("set exactly one of webhook_url and webhook_url_file")
        return self

    @property
    def url(self) -> str:
        """Return the webhook URL."""
        secret = self.webhook_url or self.webhook_url_file
        assert secret is not None  # the validator guarantees one is set
        return secret.get_secret_value()


def retry_after(value: str | None, now: float) -> float | None:
    """Parse a Retry-After header (seconds or HTTP date) into seconds from now."""
    if not value:
        return None
    text = value.strip()
    seconds = parse_uint(text)
    if seconds is not None:
        return float(seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.fromtimestamp(now, UTC)).total_seconds())


def redact(text: str, url: str) -> str:
    """Return `text` without the URL or its path and query (a chat webhook URL is a secret)."""
    parts = urlsplit(url)
    query = f"?{parts.query}" if parts.query else ""
    for secret in (url, parts.path + query, parts.path, parts.query):
        if len(secret) > 1:  # "/" alone carries nothing and is everywhere
            text = text.replace(secret, "<webhook url>")
    return text


def redact_values(text: str, values: Iterable[str]) -> str:
    """Return `text` without any configured secret value, nor its token after a scheme."""
    for value in values:
        # `Bearer <token>`: an endpoint may echo the token alone, without its scheme.
        for secret in (value, *(part for part in value.split() if len(part) >= 8)):
            if len(secret) >= 4:
                text = text.replace(secret, "<redacted>")
    return text


def classify_status(status: int, body: str, retry_after_s: float | None) -> DeliveryError:
    """Turn an unsuccessful HTTP status into a DeliveryError with the right retry flag."""
    detail = " ".join(body.split())[:200]
    reason = f"HTTP {status}" + (f": {detail}" if detail else "")
    retryable = status >= 500 or status in _RETRYABLE
    return DeliveryError(reason, retryable=retryable, retry_after=retry_after_s)


async def post(
    http: aiohttp.ClientSession,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str],
    timeout: float,  # noqa: ASYNC109 - a per-request aiohttp timeout, not a wrapper around the call
    now: float,
    secrets: Iterable[str] = (),
) -> tuple[int, str]:
    """POST `body`; return (status, text) on 2xx, else raise a classified DeliveryError.

    `secrets` (configured header values, say) are cut from the reason as the URL is.
    """
    # The URL is left out of every reason: chat webhook URLs are credentials.
    try:
        async with http.post(
            url, data=body, headers=dict(headers), timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            text = await response.text(errors="replace")
            if 200 <= response.status < 300:
                return response.status, text
            wait = retry_after(response.headers.get("Retry-After"), now)
            # Proxies and error pages echo the request line: keep the URL out of the reason.
            text = redact_values(redact(text, url), secrets)
            raise classify_status(response.status, text, wait)
    except aiohttp.InvalidURL:
        raise DeliveryError("invalid webhook URL", retryable=False) from None
    except TimeoutError:
        raise DeliveryError(f"timed out after {timeout:g}s", retryable=True) from None
    except aiohttp.ClientError as exc:
        raise DeliveryError(f"connection failed: {type(exc).__name__}", retryable=True) from exc
