"""The edge of the internet for the e2e suite: an SMTP server, Twilio's API and a chat webhook.

Each fake records what it received so scenarios can assert on delivered messages: who got an
email or an SMS, with which subject or body, and which chat posts arrived.
"""

from __future__ import annotations

import email
import email.policy
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from tests.conftest import free_port
from tests.receiver._channel_helpers import RecordingServer, recording_server

TWILIO_SID = "AC" + "e2e0" * 8


@dataclass(frozen=True)
class Mail:
    """One email the SMTP server accepted."""

    to: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        """Return the Subject header."""
        return str(self.message["Subject"])

    @property
    def kind(self) -> str:
        """Return the notification kind (firing, acknowledged, resolved, digest, ...)."""
        return str(self.message["X-Maintwatch-Kind"])

    @property
    def incident(self) -> int:
        """Return the incident id the mail is about (0 for a digest)."""
        return int(str(self.message["X-Maintwatch-Incident"] or 0))

    def text(self) -> str:
        """Return the plain-text part."""
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, f"no text/plain part in {self.subject!r}"
        return str(part.get_content())


@dataclass
class Mailbox:
    """aiosmtpd handler keeping every accepted mail (aiosmtpd calls `handle_DATA`)."""

    mails: list[Mail] = field(default_factory=list)

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Envelope
    ) -> str:
        """Parse and keep the message."""
        parsed = email.message_from_bytes(
            envelope.original_content or b"", policy=email.policy.default
        )
        assert isinstance(parsed, EmailMessage)
        self.mails.append(Mail(tuple(envelope.rcpt_tos), parsed))
        return "250 Message accepted"

    def to(self, address: str, incident: int | None = None, kind: str | None = None) -> list[Mail]:
        """Return mails to `address`, optionally only about one incident and of one kind."""
        return [
            m
            for m in list(self.mails)
            if address in m.to
            and (incident is None or m.incident == incident)
            and (kind is None or m.kind == kind)
        ]


@contextmanager
def smtp_server(mailbox: Mailbox) -> Iterator[int]:
    """Run aiosmtpd (plain SMTP, in its own thread) on a free port; yield the port."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@dataclass(frozen=True)
class Sms:
    """One message accepted by the fake Twilio API."""

    to: str
    body: str


class FakeTwilio:
    """Twilio's Messages API on a local port, recording every message's recipient and body."""

    def __init__(self, server: RecordingServer) -> None:
        self.server = server
        self.url = server.url

    def messages(self) -> list[Sms]:
        """Return every accepted message, oldest first."""
        out = []
        for request in list(self.server.requests):
            form = urllib.parse.parse_qs(request.body.decode())
            out.append(Sms(to=form["To"][0], body=form["Body"][0]))
        return out

    def to(self, number: str, containing: str = "") -> list[Sms]:
        """Return the messages sent to `number` whose body contains `containing`."""
        return [m for m in self.messages() if m.to == number and containing in m.body]


async def _twilio_created(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    sid = "SM" + uuid.uuid4().hex
    return web.json_response(
        {"sid": sid, "status": "queued", "to": form["To"], "body": form["Body"]}, status=201
    )


@asynccontextmanager
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    """Serve the fake Twilio API on a free port."""
    async with recording_server(_twilio_created) as server:
        yield FakeTwilio(server)


class FakeChat:
    """A Slack incoming webhook on a local port, keeping every post."""

    def __init__(self, server: RecordingServer) -> None:
        self.server = server
        self.url = f"{server.url}/services/T0/B0/e2e"

    def posts(self, containing: str = "") -> list[dict[str, Any]]:
        """Return every post (Slack JSON) whose top-level text contains `containing`."""
        found = [r.json() for r in list(self.server.requests)]
        return [p for p in found if containing in str(p.get("text", ""))]


@asynccontextmanager
async def fake_chat() -> AsyncIterator[FakeChat]:
    """Serve the fake chat webhook on a free port."""
    async with recording_server() as server:
        yield FakeChat(server)
