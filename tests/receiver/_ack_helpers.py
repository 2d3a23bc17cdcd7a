"""Helpers for the ack paths, the page and the digest: config, a served app, state reads."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from receiver.app import make_app
from receiver.appkeys import STORE
from receiver.config import load_config_text
from tests.conftest import free_port
from tests.receiver._helpers import Running, in_process, open_webhook

SECRET = "links-secret-for-tests"
API_TOKEN = "api-token-for-tests"
PASSWORD = "correct horse"
TWILIO_TOKEN = "twilio-auth-token"
SLACK_SECRET = "slack-signing-secret"


def ack_config(tmp_path: Path, store: str, external_url: str, extra: str = "") -> str:
    """Return a receiver config with links, a web user, an API token and inbound webhooks."""
    files = {
        "links": SECRET,
        "api": API_TOKEN,
        "pw": PASSWORD,
        "twilio": TWILIO_TOKEN,
        "slack": SLACK_SECRET,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text + "\n")
    return f"""
{store}
external_url: {external_url}
channels:
  - {{name: chat, type: script}}
  - {{name: sms, type: script_sms}}
people:
  - {{id: alice, name: Alice, phone: "+4915100000001", chat: alice.a}}
  - {{id: bob, name: Bob, phone: "+4915100000002", chat: bob.b}}
routes:
  - {{name: ops, matchers: ['team="ops"'], channels: [chat], people: [alice]}}
default_route: {{channels: [chat]}}
links: {{secret_file: {tmp_path / "links"}, expire: 1h}}
api: {{token_file: {tmp_path / "api"}}}
web: {{users: [{{name: alice, password_file: {tmp_path / "pw"}}}], secure_cookies: false,
      api_token_login: true}}
inbound:
  twilio: {{auth_token_file: {tmp_path / "twilio"}, help_replies_per_hour: 2}}
  slack: {{signing_secret_file: {tmp_path / "slack"}}}
{extra}
"""


def recording_logger() -> Any:
    """Return a logger that records events instead of printing them.

    A CLI test that calls `main()` points structlog's global config at pytest's per-test
    stderr, which is closed afterwards; a logger with its own processors is immune to that.
    """
    return structlog.wrap_logger(
        structlog.testing.CapturingLogger(), processors=[], wrapper_class=structlog.BoundLogger
    )


@asynccontextmanager
async def serve(
    config_text: str, clock: Callable[[], float] = time.time, port: int | None = None
) -> AsyncIterator[Running]:
    """Serve the receiver (worker driven by hand) on 127.0.0.1:<port>."""
    config = in_process(load_config_text(open_webhook(config_text)))
    app = make_app(config, recording_logger(), clock=clock, run_worker=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = port or free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            yield Running(app, f"http://127.0.0.1:{port}", http, config)
    finally:
        await runner.cleanup()


async def incident(rx: Running, incident_id: int) -> dict[str, Any]:
    """Return the stored incident (fails the test when missing)."""
    found = await rx.app[STORE].incident(incident_id)
    assert found is not None
    return found.to_json()
