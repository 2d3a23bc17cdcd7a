"""Email channel against a real aiosmtpd server: plain, STARTTLS, implicit TLS, AUTH, refusals."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from pydantic import ValidationError

from receiver.delivery.channels.base import DeliveryError
from receiver.delivery.channels.email import EmailChannel, EmailConfig
from tests.conftest import free_port
from tests.receiver._channel_helpers import (
    HOSTILE,
    RecordingLogger,
    make_context,
    make_notification,
    make_recipient,
)


@dataclass
class Mailbox:
    """What the SMTP server accepted; `refuse` maps an address to an SMTP reply for RCPT."""

    messages: list[tuple[Envelope, EmailMessage]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)

    async def handle_RCPT(  # aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        """Accept the recipient unless told to refuse it."""
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # aiosmtpd's hook name
        self, server: Any, session: Session, envelope: Envelope
    ) -> str:
        """Keep the parsed message."""
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope, parsed))
        return "250 Message accepted"

    def only(self) -> EmailMessage:
        """Return the single message received."""
        assert len(self.messages) == 1, self.messages
        return self.messages[0][1]


def authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """Accept only pager / s3cret."""
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"pager",
        b"s3cret",
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@contextmanager
def smtp_server(mailbox: Mailbox, **kwargs: Any) -> Iterator[int]:
    """Run aiosmtpd on a free port (in its own thread, as aiosmtpd does) and yield the port."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
async def _closing_transports_finish() -> AsyncIterator[None]:
    """Let the loop run once more after each test before pytest closes it.

    aiosmtplib closes its socket when a send fails (535, refused recipients); the transport
    finishes closing on the next loop iteration, and a loop closed before that leaves it to the
    garbage collector mid-close (a ResourceWarning, an error under filterwarnings=error).
    """
    yield
    await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    """Return a throwaway CA."""
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """Return the server's TLS context with a certificate for 127.0.0.1."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    """Write the CA certificate where the channel config can point at it."""
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return a client session (the email channel does not use it, the context needs one)."""
    async with aiohttp.ClientSession() as session:
        yield session


def config(port: int, **fields: Any) -> EmailConfig:
    """Return an email config for the local server."""
    data: dict[str, Any] = {
        "name": "mail",
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "tls": "none",
        "from": "maintwatch <pager@example.org>",
        "to": ["ops@example.org"],
        "timeout": "5s",
        **fields,
    }
    return EmailConfig.model_validate(data)


async def test_plain_multipart_message_with_stable_ids(http: aiohttp.ClientSession) -> None:
    mailbox = Mailbox()
    n = make_notification(
        2, common_labels={"alertname": "BackupTooOld", "severity": "critical", "team": HOSTILE}
    )
    with smtp_server(mailbox) as port:
        channel = EmailChannel(config(port), make_context(http))
        receipt = await channel.send(n)
    envelope, msg = mailbox.messages[0]
    assert envelope.mail_from == "pager@example.org"
    assert envelope.rcpt_tos == ["ops@example.org"]
    assert receipt.provider_id == "<out-42@maintwatch>"
    assert msg["Message-ID"] == "<out-42@maintwatch>"
    assert msg["In-Reply-To"] == "<incident-12@maintwatch>"
    assert msg["References"] == "<incident-12@maintwatch>"
    assert msg["Subject"] == "[FIRING:2] BackupTooOld (ops)"
    assert msg["To"] == "ops@example.org"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None
    assert html is not None
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert f"team: {HOSTILE}" in text.get_content()
    assert "<script>" not in html.get_content()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Ünïcødé ✓" in html.get_content()


async def test_same_notification_keeps_message_id_other_one_same_thread(
    http: aiohttp.ClientSession,
) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        channel = EmailChannel(config(port), make_context(http))
        await channel.send(make_notification())
        await channel.send(make_notification())  # a retry of the same outbox row
        await channel.send(make_notification(id="out-43", kind="resolved"))
    ids = [m["Message-ID"] for _, m in mailbox.messages]
    assert ids == ["<out-42@maintwatch>", "<out-42@maintwatch>", "<out-43@maintwatch>"]
    assert {m["References"] for _, m in mailbox.messages} == {"<incident-12@maintwatch>"}


async def test_recipient_address_wins_over_configured_to(http: aiohttp.ClientSession) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        channel = EmailChannel(config(port), make_context(http))
        await channel.send(make_notification(recipient=make_recipient()))
    assert mailbox.messages[0][0].rcpt_tos == ["alice@example.org"]


async def test_recipient_without_email_is_permanent(http: aiohttp.ClientSession) -> None:
    channel = EmailChannel(config(free_port()), make_context(http))
    with pytest.raises(DeliveryError, match="alice has no email") as caught:
        await channel.send(make_notification(recipient=make_recipient(email=None)))
    assert caught.value.retryable is False


async def test_starttls_with_auth(
    http: aiohttp.ClientSession, server_tls: ssl.SSLContext, ca_file: str, tmp_path: Path
) -> None:
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    mailbox = Mailbox()
    with smtp_server(
        mailbox, tls_context=server_tls, require_starttls=True, authenticator=authenticate
    ) as port:
        cfg = config(
            port, tls="starttls", ca_file=ca_file, username="pager", password_file=str(password)
        )
        await EmailChannel(cfg, make_context(http)).send(make_notification())
    assert mailbox.only()["Message-ID"] == "<out-42@maintwatch>"


async def test_implicit_tls(
    http: aiohttp.ClientSession, server_tls: ssl.SSLContext, ca_file: str
) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, ssl_context=server_tls) as port:
        cfg = config(port, tls="ssl", ca_file=ca_file)
        await EmailChannel(cfg, make_context(http)).send(make_notification())
    assert len(mailbox.messages) == 1


async def test_untrusted_certificate_is_permanent_unless_verify_off(
    http: aiohttp.ClientSession, server_tls: ssl.SSLContext
) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox, tls_context=server_tls) as port:
        channel = EmailChannel(config(port, tls="starttls"), make_context(http))
        with pytest.raises(DeliveryError, match="TLS failed") as caught:
            await channel.send(make_notification())
        assert caught.value.retryable is False
        unverified = EmailChannel(config(port, tls="starttls", verify=False), make_context(http))
        await unverified.send(make_notification())
    assert len(mailbox.messages) == 1


async def test_plain_auth_and_wrong_password(http: aiohttp.ClientSession, tmp_path: Path) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret")
    bad.write_text("nope")
    mailbox = Mailbox()
    with smtp_server(mailbox, authenticator=authenticate, auth_require_tls=False) as port:
        ok = config(port, username="pager", password_file=str(good))
        await EmailChannel(ok, make_context(http)).send(make_notification())
        wrong = config(port, username="pager", password_file=str(bad))
        with pytest.raises(DeliveryError, match="authentication failed: 535") as caught:
            await EmailChannel(wrong, make_context(http)).send(make_notification())
    assert caught.value.retryable is False
    assert len(mailbox.messages) == 1


@pytest.mark.parametrize(
    ("reply", "retryable"),
    [("550 5.1.1 no such user", False), ("451 4.3.0 try again later", True)],
)
async def test_refused_recipient_is_classified_by_code(
    http: aiohttp.ClientSession, reply: str, retryable: bool
) -> None:
    mailbox = Mailbox(refuse={"ops@example.org": reply})
    with smtp_server(mailbox) as port:
        channel = EmailChannel(config(port), make_context(http))
        with pytest.raises(DeliveryError, match=r"recipients refused: ops@example\.org") as caught:
            await channel.send(make_notification())
    assert caught.value.retryable is retryable
    assert mailbox.messages == []


async def test_partly_refused_recipients_still_deliver_and_log(
    http: aiohttp.ClientSession,
) -> None:
    mailbox = Mailbox(refuse={"gone@example.org": "550 no such user"})
    logger = RecordingLogger()
    with smtp_server(mailbox) as port:
        cfg = config(port, to=["ops@example.org", "gone@example.org"])
        await EmailChannel(cfg, make_context(http, logger)).send(make_notification())
    assert mailbox.messages[0][0].rcpt_tos == ["ops@example.org"]
    assert logger.events[0]["event"] == "email_recipients_refused"


async def test_connection_refused_is_retryable(http: aiohttp.ClientSession) -> None:
    channel = EmailChannel(config(free_port()), make_context(http))
    with pytest.raises(DeliveryError, match="connection failed") as caught:
        await channel.send(make_notification())
    assert caught.value.retryable is True


def test_config_problems_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        EmailConfig.model_validate(
            {
                "name": "m",
                "type": "email",
                "host": "h",
                "from": "not-an-address",
                "to": ["ok@example.org", "@bad"],
                "username": "u",
                "ca_file": str(tmp_path / "missing.pem"),
            }
        )
    text = str(caught.value)
    assert "'not-an-address' is not an email address" in text
    assert "'@bad' is not an email address" in text
    assert "missing.pem" in text


def test_username_without_password_is_rejected() -> None:
    with pytest.raises(ValidationError, match="both username and password_file"):
        EmailConfig.model_validate(
            {"name": "m", "type": "email", "host": "h", "from": "a@b.c", "username": "u"}
        )
