"""Security test helpers: a receiver with every auth path configured, forgers, hostile text."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from receiver.ack.links import Claim, derive, sign
from tests.conftest import free_port
from tests.receiver._ack_helpers import PASSWORD, ack_config, serve
from tests.receiver._helpers import T0, FakeClock, Running, register_script, store_yaml

WEBHOOK_TOKEN = "webhook-token-for-security-tests"
HOSTILE = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>{{7*7}}${7*7}"
"""Markup, attribute breakers and template syntax: must show as text everywhere."""


def sweep_config(tmp_path: Path, external_url: str, file_channel: Path | None = None) -> str:
    """Return a config with every auth path on: webhook token, API, links, page, inbound.

    With `file_channel`, every incident also goes to a file channel writing there.
    """
    (tmp_path / "webhook").write_text(WEBHOOK_TOKEN + "\n")
    extra = f"webhook: {{auth: bearer, token_file: {tmp_path / 'webhook'}}}\n"
    text = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), external_url, extra)
    if file_channel is not None:
        sms = "  - {name: sms, type: script_sms}\n"
        text = text.replace(sms, f"{sms}  - {{name: out, type: file, path: {file_channel}}}\n")
        text = text.replace("default_route: {channels: [chat]}", "default_route: {channels: [out]}")
    return text


@asynccontextmanager
async def served(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    clock: FakeClock | None = None,
    file_channel: Path | None = None,
) -> AsyncIterator[Running]:
    """Serve the fully configured receiver (scripted channels, worker by hand) on a free port."""
    register_script(monkeypatch)
    port = free_port()
    text = sweep_config(tmp_path, f"http://127.0.0.1:{port}", file_channel)
    async with serve(text, clock or FakeClock(T0), port) as running:
        yield running


def link_token(
    secret: bytes, incident_id: int, action: str, expires: float, person: str = ""
) -> str:
    """Return a link token signed with the links key derived from `secret`."""
    claim = Claim(incident_id, action, person, int(expires), "n" + str(time.monotonic_ns()))  # type: ignore[arg-type]
    return sign(derive(secret, "links"), claim)


def slack_headers(secret: str, body: bytes, stamp: float) -> dict[str, str]:
    """Return the headers Slack sends with a request signed by `secret` at `stamp`."""
    ts = str(int(stamp))
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    """Return the X-Twilio-Signature Twilio computes with `token` over `url` and the form."""
    signature: str = RequestValidator(token).compute_signature(url, params)
    return signature


async def login_cookie(rx: Running, password: str = PASSWORD) -> str:
    """Log in as alice; return the `Cookie` header value."""
    async with rx.http.post(
        f"{rx.url}/login",
        data={"name": "alice", "password": password, "next": "/"},
        allow_redirects=False,
    ) as response:
        assert response.status == 303, await response.text()
        return response.headers["Set-Cookie"].split(";", 1)[0]


def find_all(haystack: str, needles: dict[str, str]) -> list[str]:
    """Return the names of the needles that occur in `haystack`."""
    return [name for name, value in needles.items() if value and value in haystack]


def as_text(value: Any) -> str:
    """Return a value as text for grepping (bytes decoded leniently)."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
