"""Email channel: multipart (text + HTML) mail over SMTP with STARTTLS, SSL or plain, and AUTH."""

from __future__ import annotations

import asyncio
import re
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Annotated, Literal

import aiosmtplib
from pydantic import AfterValidator, Field, model_validator

from maintwatch.configload import Duration, ExistingFile, SecretFromFile
from receiver.delivery.channels.base import (
    AlertView,
    Channel,
    ChannelConfig,
    ChannelContext,
    DeliveryError,
    DeliveryReceipt,
    Notification,
)
from receiver.delivery.templates import Renderer, TemplateBlocks
from receiver.graphs import GraphError, Graphs, GraphsConfig, png

_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
_MSGID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _check_address(value: str) -> str:
    address = parseaddr(value)[1]
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError(f"{value!r} is not an email address")
    return value


Address = Annotated[str, AfterValidator(_check_address)]


class EmailConfig(ChannelConfig):
    """The SMTP server, how to secure and authenticate, and the default recipients."""

    type: Literal["email"]
    blocks = TemplateBlocks("email.j2", ("subject", "text", "html"))
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)  # 587 / 465 / 25 by `tls`
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_file: SecretFromFile | None = None
    sender: Address = Field(alias="from")
    to: list[Address] = Field(default_factory=list)  # used when a notification has no recipient
    ca_file: ExistingFile | None = None  # trust this CA instead of the system store
    verify: bool = True  # verify the server certificate and host name
    timeout: Duration = 30.0
    # Set: the first alert's graph from Prometheus as an inline PNG in the HTML part.
    graph: GraphsConfig | None = None

    @model_validator(mode="after")
    def _auth_pair(self) -> EmailConfig:
        """Require username and password_file together."""
        if (self.username is None) != (self.password_file is None):
            raise ValueError("set both username and password_file, or neither")
        return self


def message_id(notification: Notification) -> str:
    """Return the stable Message-ID: the same outbox row always gets the same one."""
    return f"<{_MSGID_UNSAFE.sub('_', notification.id)}@maintwatch>"


def thread_root(notification: Notification) -> str:
    """Return the id every mail of an incident refers to, so mail clients thread them."""
    return f"<incident-{notification.incident_id}@maintwatch>"


GRAPH_CID = "graph@maintwatch"


def build_message(
    notification: Notification,
    parts: dict[str, str],
    sender: str,
    to: list[str],
    now: float,
    graph: bytes | None = None,
) -> EmailMessage:
    """Return the multipart/alternative message; with a graph, the HTML part is related."""
    msg = EmailMessage()
    msg["Subject"] = " ".join(parts["subject"].split())  # headers must be one line
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(now, usegmt=True)
    msg["Message-ID"] = message_id(notification)
    msg["In-Reply-To"] = thread_root(notification)
    msg["References"] = thread_root(notification)
    # RFC 3834: out-of-office responders must not answer pages.
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Maintwatch-Incident"] = str(notification.incident_id)
    msg["X-Maintwatch-Kind"] = notification.kind
    msg.set_content(parts["text"] + "\n")
    html = parts["html"]
    if graph is not None:
        img = f'<p><img src="cid:{GRAPH_CID}" alt="graph of the alert" width="600"></p>'
        html = html.replace("</body>", img + "</body>", 1) if "</body>" in html else html + img
    msg.add_alternative(html + "\n", subtype="html")
    for part in msg.iter_parts() if graph is not None else ():
        if part.get_content_type() == "text/html" and isinstance(part, EmailMessage):
            part.add_related(graph, maintype="image", subtype="png", cid=f"<{GRAPH_CID}>")
    return msg


def _alert_row(alert: AlertView) -> dict[str, object]:
    """Return an alert in the stored shape the graphs read."""
    ends = alert.ends_at.isoformat() if alert.ends_at else None
    return {
        "generator_url": alert.generator_url,
        "labels": alert.labels,
        "starts_at": alert.starts_at.isoformat(),
        "ends_at": ends,
    }


def _tls_context(config: EmailConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    if not config.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _recipients(notification: Notification, config: EmailConfig) -> list[str]:
    person = notification.recipient
    if person is not None:
        if not person.email:
            raise DeliveryError(f"recipient {person.id} has no email address", retryable=False)
        return [person.email]
    if not config.to:
        raise DeliveryError("no recipient and no `to` addresses configured", retryable=False)
    return list(config.to)


def classify(exc: Exception) -> DeliveryError:
    """Map an SMTP/TLS/network failure to a DeliveryError (4xx and network: retry; 5xx: not)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return DeliveryError(f"recipients refused: {detail}", retryable=any(c < 500 for c in codes))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        what = (
            "authentication failed"
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError)
            else "SMTP error"
        )
        return DeliveryError(f"{what}: {exc.code} {exc.message}", retryable=400 <= exc.code < 500)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return DeliveryError(f"server does not support it: {exc}", retryable=False)
    if isinstance(exc, ssl.SSLCertVerificationError) or isinstance(exc.__cause__, ssl.SSLError):
        return DeliveryError(f"TLS failed: {exc}", retryable=False)
    if isinstance(exc, TimeoutError):
        return DeliveryError(f"timed out: {exc}", retryable=True)
    return DeliveryError(f"connection failed: {type(exc).__name__}: {exc}", retryable=True)


class EmailChannel(Channel[EmailConfig]):
    """Send notifications as email."""

    kind = "email"
    config_type = EmailConfig

    def __init__(self, config: EmailConfig, context: ChannelContext) -> None:
        super().__init__(config, context)
        self.renderer = Renderer(config.blocks, config.template, self.context.logger, config.name)
        self._tls = _tls_context(config) if config.tls != "none" else None
        wanted = config.graph is not None and config.graph.enabled
        self.graphs = Graphs(config.graph, context.http) if config.graph and wanted else None

    async def send(self, notification: Notification) -> DeliveryReceipt:
        """Render and send one mail; Message-ID is the provider id."""
        now = self.context.clock()
        to = _recipients(notification, self.config)
        parts = await self.renderer.render_async(notification, now)
        graph = await self._graph(notification, now)
        msg = build_message(notification, parts, self.config.sender, to, now, graph)
        cfg = self.config
        password = cfg.password_file.get_secret_value() if cfg.password_file else None
        try:
            errors, _ = await aiosmtplib.send(
                msg,
                hostname=cfg.host,
                port=cfg.port or _DEFAULT_PORTS[cfg.tls],
                username=cfg.username,
                password=password,
                use_tls=cfg.tls == "ssl",
                start_tls=cfg.tls == "starttls",
                tls_context=self._tls,
                timeout=cfg.timeout,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise classify(exc) from exc
        if errors:
            # Some recipients were refused while others accepted: the mail went out; say who not.
            refused = {addr: f"{code} {text}" for addr, (code, text) in errors.items()}
            self.context.logger.warning(
                "email_recipients_refused", channel=self.name, refused=refused
            )
        return DeliveryReceipt(provider_id=msg["Message-ID"])

    async def _graph(self, notification: Notification, now: float) -> bytes | None:
        """Return the first (firing) alert's graph as PNG; none when it cannot be drawn."""
        if self.graphs is None or not notification.alerts or notification.kind == "digest":
            return None
        alert = min(notification.alerts, key=lambda a: a.status != "firing")
        try:
            curves = await self.graphs.curves(_alert_row(alert), now)
        except GraphError as exc:
            # The page goes out without its picture: one line says why.
            self.context.logger.info("email_graph_skipped", channel=self.name, reason=str(exc))
            return None
        return await asyncio.to_thread(png, curves)
