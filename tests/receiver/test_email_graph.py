"""The optional graph in mail: the email channel asks a real Prometheus for the alert's
series and sends it as an inline PNG; without Prometheus the mail goes out without it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage, Message

import aiohttp
import pytest

from receiver.delivery.channels.base import ChannelContext, Notification
from receiver.delivery.channels.email import GRAPH_CID, EmailChannel
from tests.conftest import free_port
from tests.receiver._channel_helpers import RecordingLogger, make_alert, make_context
from tests.receiver._channel_helpers import make_notification as notification_of
from tests.receiver._prometheus_helpers import generator_url, prometheus  # noqa: F401
from tests.receiver.test_channel_email import Mailbox, smtp_server
from tests.receiver.test_channel_email import config as email_config


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return the shared client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def backup_page(prometheus_url: str) -> Notification:
    """Return a firing page for the backfilled backup set, started two hours ago."""
    started = datetime.fromtimestamp(datetime.now(UTC).timestamp() - 7200, UTC)
    alert = make_alert(
        labels={
            "alertname": "BackupTooOld",
            "severity": "critical",
            "job": "maintwatch",
            "instance": "127.0.0.1:9839",
            "backup": "tongacp_db",
        },
        starts_at=started,
        generator_url=generator_url(prometheus_url),
    )
    return notification_of(alerts=(alert,))


async def _mail(
    http: aiohttp.ClientSession, n: Notification, graph: dict[str, str]
) -> EmailMessage:
    mailbox = Mailbox()
    # The graph's window ends now: a clock of today, not the helpers' fixed one.
    context = ChannelContext(http=http, logger=RecordingLogger(), clock=time.time)
    with smtp_server(mailbox) as port:
        await EmailChannel(email_config(port, graph=graph), context).send(n)
    return mailbox.only()


def _images(message: EmailMessage) -> list[Message]:
    return [p for p in message.walk() if p.get_content_type() == "image/png"]


async def test_mail_carries_the_alerts_graph_as_inline_png(
    http: aiohttp.ClientSession,
    prometheus: str,  # noqa: F811 - the fixture
) -> None:
    message = await _mail(http, backup_page(prometheus), {"timeout": "5s"})
    (image,) = _images(message)
    assert image["Content-ID"] == f"<{GRAPH_CID}>"
    payload = image.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert payload.startswith(b"\x89PNG\r\n\x1a\n")
    html = message.get_body(("html",))
    assert html is not None
    assert f'src="cid:{GRAPH_CID}"' in html.get_content()
    text = message.get_body(("plain",))
    assert text is not None
    assert "BackupTooOld" in text.get_content()


async def test_mail_goes_out_without_graph_when_prometheus_is_away(
    http: aiohttp.ClientSession,
) -> None:
    away = f"http://127.0.0.1:{free_port()}"
    message = await _mail(http, backup_page(away), {"timeout": "1s"})
    assert _images(message) == []
    html = message.get_body(("html",))
    assert html is not None
    assert "cid:" not in html.get_content()


async def test_no_graph_unless_configured(http: aiohttp.ClientSession) -> None:
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        channel = EmailChannel(email_config(port), make_context(http))
        assert channel.graphs is None
        await channel.send(replace(notification_of(), kind="firing"))
    assert _images(mailbox.only()) == []
