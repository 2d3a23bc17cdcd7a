"""A realistic receiver: every secret from a file, every channel type, local fakes behind them."""

from __future__ import annotations

import base64
import email
import email.policy
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.conftest import free_port
from tests.receiver._process_helpers import TWILIO_SID

FILE_SECRETS = (
    "webhook_token",
    "api_token",
    "links_secret",
    "web_password",
    "twilio_inbound_token",
    "slack_signing_secret",
    "slack_bot_token",
    "sms_auth_token",
    "smtp_password",
    "smtp_wrong_password",
    "webhook_hmac_secret",
    "pg_password",
)
URL_SECRETS = ("slack_url", "teams_url", "mattermost_url")
SMTP_USER = "pager"
ALICE_PHONE = "+4915100000001"


def make_secrets(tmp_path: Path, chat: str, refused: str) -> dict[str, str]:
    """Write every secret to its own file; return name → value (URL secrets included).

    Slack and Mattermost URLs point at `chat` (a server that fails and echoes the request);
    Teams at `refused` (nothing listens), so both failure kinds are exercised.
    """
    values = {name: f"{name.replace('_', '-')}-{uuid.uuid4().hex}" for name in FILE_SECRETS}
    values["slack_url"] = f"{chat}/services/T0/B0/{uuid.uuid4().hex}"
    values["mattermost_url"] = f"{chat}/hooks/{uuid.uuid4().hex}"
    values["teams_url"] = f"{refused}/workflows/{uuid.uuid4().hex}?sig={uuid.uuid4().hex}"
    for name, value in values.items():
        (tmp_path / name).write_text(value + "\n")
    basic = f"{TWILIO_SID}:{values['sms_auth_token']}".encode()
    values["sms_basic_auth"] = base64.b64encode(basic).decode()  # as it travels to Twilio
    return values


def full_config(
    tmp_path: Path, store: str, external_url: str, smtp_port: int, chat: str, twilio: str
) -> str:
    """Return a receiver config using every secret file `make_secrets` wrote."""
    s = {name: tmp_path / name for name in (*FILE_SECRETS, *URL_SECRETS)}
    mail = (
        f"type: email, host: 127.0.0.1, port: {smtp_port}, tls: none, username: {SMTP_USER},"
        " from: 'maintwatch <pager@example.org>', to: [ops@example.org], timeout: 5s"
    )
    return f"""
{store}
external_url: {external_url}
webhook: {{auth: bearer, token_file: {s["webhook_token"]}}}
api: {{token_file: {s["api_token"]}}}
links: {{secret_file: {s["links_secret"]}, expire: 1h}}
web: {{users: [{{name: alice, password_file: {s["web_password"]}}}], secure_cookies: false}}
inbound:
  twilio: {{auth_token_file: {s["twilio_inbound_token"]}}}
  slack: {{signing_secret_file: {s["slack_signing_secret"]}}}
people:
  - {{id: alice, name: Alice, email: alice@example.org, phone: "{ALICE_PHONE}", chat: alice.a}}
channels:
  - {{name: mail, {mail}, password_file: {s["smtp_password"]}}}
  - {{name: mail-bad, {mail}, password_file: {s["smtp_wrong_password"]}}}
  - {{name: sms, type: sms, account_sid: {TWILIO_SID}, auth_token_file: {s["sms_auth_token"]},
     from: '+15005550006', to: ['+14155550199'], api_base_url: '{twilio}', timeout: 5s}}
  - {{name: slack, type: slack, webhook_url_file: {s["slack_url"]}, timeout: 5s}}
  - {{name: slackbot, type: slack_bot, token_file: {s["slack_bot_token"]}, channel: C0OPS,
      api_url: '{chat}/api/', timeout: 5s}}
  - {{name: teams, type: teams, webhook_url_file: {s["teams_url"]}, timeout: 5s}}
  - {{name: mm, type: mattermost, webhook_url_file: {s["mattermost_url"]}, timeout: 5s}}
  - {{name: hook, type: webhook, url: '{chat}/hook', secret_file: {s["webhook_hmac_secret"]},
     timeout: 5s}}
  - {{name: file, type: file, path: {tmp_path / "pages.jsonl"}}}
default_route: {{channels: [mail, mail-bad, sms, slack, slackbot, teams, mm, hook, file]}}
delivery: {{max_attempts: 2, backoff_initial: 1s, backoff_max: 1s, send_timeout: 5s,
           poll_interval: 200ms}}
"""


@dataclass
class Mailbox:
    """Messages an SMTP server accepted."""

    password: str
    messages: list[EmailMessage] = field(default_factory=list)

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        """Accept only the configured user and password."""
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            SMTP_USER.encode(),
            self.password.encode(),
        )
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        """Keep the parsed message."""
        parsed = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 Message accepted"


@contextmanager
def smtp_server(mailbox: Mailbox) -> Iterator[int]:
    """Run aiosmtpd with AUTH on a free port; yield the port."""
    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=mailbox.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


async def echo_failure(request: web.Request) -> web.StreamResponse:
    """Fail like a careless proxy: echo the request line and headers in the error body."""
    headers = "\n".join(f"{k}: {v}" for k, v in request.headers.items())
    text = f"no route for {request.method} {request.path_qs}\n{headers}"
    return web.Response(status=500 if request.path == "/hook" else 404, text=text)
