"""HTTP health endpoints: status in an allowed set, optional body regex or JSON field match.

A failed probe (refused, timed out, TLS error, unexpected status or body) is not a collector
failure: it is `maintwatch_http_probe_success 0` with the reason logged once.

`server_name` and `resolve` reach an endpoint by IP or through a name the exporter's DNS does
not know: the configured name goes in the Host header and TLS SNI and is checked against the
certificate, like `tls` targets; `resolve` pins the address connected to (curl's `--resolve`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from prometheus_client.core import Metric
from pydantic import Field, SecretStr, field_validator, model_validator
from yarl import URL

from exporter.collectors.base import Collector, Context
from exporter.config import InstanceConfig
from exporter.metrics import MetricSet, gauge
from maintwatch.configload import ExistingFile, SecretFromFile

HTTP_PROBE_SUCCESS = gauge(
    "maintwatch_http_probe_success",
    "1 if the health endpoint answered with an allowed status and body.",
)
HTTP_PROBE_DURATION_SECONDS = gauge(
    "maintwatch_http_probe_duration_seconds",
    "Time the last probe took, from connecting to the end of the body read.",
)
HTTP_PROBE_STATUS_CODE = gauge(
    "maintwatch_http_probe_status_code", "HTTP status of the last answer (0 when none arrived)."
)

MAX_BODY_BYTES = 1024 * 1024  # health answers are small; match on the first MiB only
JsonScalar = bool | int | float | str


class HttpConfig(InstanceConfig):
    """One health endpoint."""

    url: str = Field(pattern=r"^https?://[^/\s]+")
    method: Literal["GET", "HEAD", "POST", "PUT", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    header_files: dict[str, SecretFromFile] = Field(default_factory=dict)
    body: str | None = None
    valid_status_codes: list[int] = Field(default_factory=list)
    body_regex: str | None = None
    json_field: str | None = None
    json_value: JsonScalar | None = None
    ca_file: ExistingFile | None = None
    follow_redirects: bool = True
    server_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.-]+$")
    resolve: str | None = None

    @field_validator("resolve")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address") from None
        return value

    @field_validator("valid_status_codes")
    @classmethod
    def _codes(cls, codes: list[int]) -> list[int]:
        bad = [c for c in codes if not 100 <= c <= 599]
        if bad:
            raise ValueError(f"status codes must be 100-599, got {bad}")
        return codes

    @field_validator("body_regex")
    @classmethod
    def _regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        return pattern

    @model_validator(mode="after")
    def _json_pair(self) -> HttpConfig:
        if (self.json_field is None) != (self.json_value is None):
            raise ValueError("json_field and json_value go together")
        return self


@dataclass(frozen=True)
class Outcome:
    """One probe's result, before it becomes metrics."""

    duration: float
    status: int = 0  # 0 when no response arrived
    error: str | None = None


def check_response(config: HttpConfig, status: int, body: bytes) -> str | None:
    """Return why the response fails the configured checks, or None when it passes."""
    allowed = config.valid_status_codes
    if (status not in allowed) if allowed else not 200 <= status <= 299:
        return f"status {status} not in {allowed or '2xx'}"
    text = body.decode("utf-8", "replace")
    if config.body_regex is not None and not re.search(config.body_regex, text):
        return f"body does not match {config.body_regex!r}"
    if config.json_field is not None:
        return _check_json(text, config.json_field, config.json_value)
    return None


def _check_json(text: str, path: str, expected: JsonScalar | None) -> str | None:
    try:
        node: Any = json.loads(text)
    except ValueError:
        return "body is not JSON"
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return f"JSON field {path} is missing"
    if not _same_json(node, expected):
        return f"JSON field {path} is {json.dumps(node)[:80]}, expected {json.dumps(expected)}"
    return None


def _same_json(actual: Any, expected: Any) -> bool:
    # JSON true must not equal 1: compare booleans only with booleans.
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    return bool(actual == expected)


class HttpCollector(Collector[HttpConfig]):
    """Probe one HTTP(S) health endpoint per refresh."""

    kind = "http"
    label = "target"
    config_type = HttpConfig
    metrics = (
        HTTP_PROBE_SUCCESS,
        HTTP_PROBE_DURATION_SECONDS,
        HTTP_PROBE_STATUS_CODE,
    )

    def __init__(self, config: HttpConfig, context: Context) -> None:
        super().__init__(config, context)
        self._last_error: str | None = None

    async def refresh(self) -> Sequence[Metric]:
        """Probe the endpoint and return the `maintwatch_http_*` families."""
        outcome = await self.probe()
        if outcome.error != self._last_error:
            url = _loggable(self.config.url)
            if outcome.error is not None:
                self.log.warning("http_probe_failed", url=url, reason=outcome.error)
            elif self._last_error is not None:
                self.log.info("http_probe_recovered", url=url)
        self._last_error = outcome.error
        return build_families(self.metric_set(), outcome)

    def probe_timeout(self) -> float:
        """Return the probe's own deadline: a little under the runtime's timeout."""
        return self.own_deadline()

    async def probe(self) -> Outcome:
        """Send the request once (fresh connection) and check the answer."""
        started = time.perf_counter()
        timeout = self.probe_timeout()
        try:
            async with asyncio.timeout(timeout):
                status, body = await self._request()
        except TimeoutError:
            error = f"no complete answer within {timeout:g}s"
            return Outcome(time.perf_counter() - started, error=error)
        except aiohttp.ClientSSLError as exc:
            return Outcome(time.perf_counter() - started, error=f"TLS: {_ssl_reason(exc)}")
        except aiohttp.ClientError as exc:
            return Outcome(time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")
        duration = time.perf_counter() - started
        return Outcome(duration, status, check_response(self.config, status, body))

    async def _request(self) -> tuple[int, bytes]:
        # A new session per probe: each probe measures a fresh connection (DNS, TCP, TLS),
        # and nothing stays open between probes.
        cfg = self.config
        url = URL(cfg.url)
        resolver = _Pinned(url.host or "", cfg.resolve) if cfg.resolve is not None else None
        connector = aiohttp.TCPConnector(ssl=_ssl_context(cfg), force_close=True, resolver=resolver)
        headers = _headers(cfg.headers, cfg.header_files)
        if cfg.server_name is not None:
            headers["Host"] = _host_header(cfg.server_name, url)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.request(
                cfg.method,
                cfg.url,
                headers=headers,
                data=cfg.body,
                allow_redirects=cfg.follow_redirects,
                server_hostname=cfg.server_name if url.scheme == "https" else None,
            ) as response,
        ):
            body = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) >= MAX_BODY_BYTES:
                    break
            return response.status, bytes(body[:MAX_BODY_BYTES])


class _Pinned(AbstractResolver):
    """Answer `address` for the URL's host (curl's `--resolve`); ask DNS for any other."""

    def __init__(self, host: str, address: str) -> None:
        self._host = host
        self._address = address
        self._family = (
            socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        )
        self._dns = aiohttp.ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return the pinned address for the URL's host, else what DNS says."""
        if host != self._host:
            return await self._dns.resolve(host, port, family)
        flags = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(
                hostname=host,
                host=self._address,
                port=port,
                family=self._family,
                proto=0,
                flags=flags,
            )
        ]

    async def close(self) -> None:
        """Release the fallback resolver."""
        await self._dns.close()


def _host_header(name: str, url: URL) -> str:
    # The URL's port stays in Host when it is not the scheme's default, as clients send it.
    return name if url.is_default_port() else f"{name}:{url.port}"


def _ssl_context(config: HttpConfig) -> ssl.SSLContext | bool:
    if config.ca_file is None:
        return True  # aiohttp's default: verify against the system store
    return ssl.create_default_context(cafile=str(config.ca_file))


def _loggable(url: str) -> str:
    # A URL may carry basic-auth credentials; secrets never reach the logs.
    return str(URL(url).with_user(None))


def _headers(plain: Mapping[str, str], secret: Mapping[str, SecretStr]) -> dict[str, str]:
    return {**plain, **{k: v.get_secret_value() for k, v in secret.items()}}


def _ssl_reason(exc: aiohttp.ClientSSLError) -> str:
    cause = getattr(exc, "certificate_error", None) or exc.os_error
    return str(getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or cause)


def build_families(ms: MetricSet, outcome: Outcome) -> list[Metric]:
    """Turn an Outcome into the `maintwatch_http_*` families."""
    ms.add(HTTP_PROBE_SUCCESS, 1 if outcome.error is None else 0)
    ms.add(HTTP_PROBE_DURATION_SECONDS, outcome.duration)
    ms.add(HTTP_PROBE_STATUS_CODE, outcome.status)
    return ms.families()
