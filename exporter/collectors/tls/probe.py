"""Open a TLS connection (directly or after STARTTLS) and read the certificate chain presented.

The chain is read even when it does not verify: a verifying handshake is tried first (what
real clients see, via OpenSSL), and only when it fails on the certificate is a second,
non-verifying handshake made to read the expired, self-signed or misnamed chain.
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from exporter.workers import pool, run_in

StartTLS = Literal["smtp", "imap", "postgres"]

_REPLY_MAX_LINES = 100  # an EHLO answer has a dozen lines; more means we are not talking SMTP
_POSTGRES_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


class ProbeError(Exception):
    """The endpoint could not be reached or did not complete STARTTLS/TLS; the message says why."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect."""

    host: str
    port: int
    server_name: str  # the name checked; sent as SNI unless it is an IP address
    starttls: StartTLS | None = None


@dataclass(frozen=True)
class Presented:
    """The chain an endpoint presented (DER, leaf first) and whether it verified."""

    chain: list[bytes]
    verify_error: str | None  # None when the chain and host name verified


def client_contexts(ca_file: Path | None) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Return (verifying, non-verifying) client contexts; `ca_file` replaces the system store."""
    verifying = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    reading = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    reading.check_hostname = False
    reading.verify_mode = ssl.CERT_NONE  # only to read what is presented; verified separately
    return verifying, reading


async def probe(endpoint: Endpoint, ca_file: Path | None) -> Presented:
    """Handshake with `endpoint`, return its chain and verification outcome; raise ProbeError."""
    verifying, reading = await run_in(pool("tls"), client_contexts, ca_file)
    try:
        chain = await _handshake(endpoint, verifying)
    except ssl.SSLCertVerificationError as exc:
        reason = str(exc.verify_message or exc)
        return Presented(await _handshake(endpoint, reading), reason)
    return Presented(chain, None)


async def _handshake(endpoint: Endpoint, context: ssl.SSLContext) -> list[bytes]:
    try:
        reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    except OSError as exc:
        raise ProbeError(f"connect to {endpoint.host}:{endpoint.port}: {_os_reason(exc)}") from None
    try:
        if endpoint.starttls is not None:
            await _PREAMBLES[endpoint.starttls](reader, writer)
        await writer.start_tls(context, server_hostname=endpoint.server_name)
        chain = peer_chain(writer.get_extra_info("ssl_object"))
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as exc:
        raise ProbeError(f"TLS handshake: {exc.reason or exc}") from None
    except (OSError, asyncio.IncompleteReadError) as exc:
        raise ProbeError(f"connection lost during handshake: {_os_reason(exc)}") from None
    finally:
        # A probe has nothing to flush; abort instead of waiting for the peer's close_notify.
        writer.transport.abort()
    if not chain:
        raise ProbeError("the server presented no certificate")
    return chain


def peer_chain(ssl_object: Any) -> list[bytes]:
    """Return the DER chain the peer sent, leaf first, whether or not it verified."""
    public = getattr(ssl_object, "get_unverified_chain", None)  # Python 3.13+
    if public is not None:
        return [bytes(cert) for cert in public() or []]
    # Python 3.10-3.12 have the same method on the private C object only.
    inner = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if inner is not None:
        return [cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in inner() or []]  # type: ignore[attr-defined]
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _os_reason(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by the server"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


async def _read_line(reader: asyncio.StreamReader, protocol: str) -> str:
    line = await reader.readline()
    if not line:
        raise ProbeError(f"{protocol}: connection closed before STARTTLS")
    return line.decode("latin-1").rstrip("\r\n")


async def _smtp_reply(reader: asyncio.StreamReader, code: str) -> list[str]:
    """Read one (possibly multi-line) SMTP reply and check its code."""
    lines: list[str] = []
    while len(lines) < _REPLY_MAX_LINES:
        line = await _read_line(reader, "SMTP")
        lines.append(line)
        if line[3:4] != "-":
            break
    if not lines[-1].startswith(code):
        raise ProbeError(f"SMTP: expected {code}, got {lines[-1][:80]!r}")
    return lines


async def _smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _smtp_reply(reader, "220")
    writer.write(b"EHLO maintwatch\r\n")
    capabilities = await _smtp_reply(reader, "250")
    if not any(line[4:].upper().startswith("STARTTLS") for line in capabilities):
        raise ProbeError("SMTP: the server does not offer STARTTLS")
    writer.write(b"STARTTLS\r\n")
    await _smtp_reply(reader, "220")


async def _imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    greeting = await _read_line(reader, "IMAP")
    if not greeting.startswith("* OK"):
        raise ProbeError(f"IMAP: unexpected greeting {greeting[:80]!r}")
    writer.write(b"mw1 STARTTLS\r\n")
    for _ in range(_REPLY_MAX_LINES):
        line = await _read_line(reader, "IMAP")
        if line.startswith("mw1 "):
            if not line.startswith("mw1 OK"):
                raise ProbeError(f"IMAP: STARTTLS refused: {line[:80]!r}")
            return
    raise ProbeError("IMAP: no answer to STARTTLS")


async def _postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(_POSTGRES_SSL_REQUEST)
    answer = await reader.readexactly(1)
    if answer != b"S":
        raise ProbeError("PostgreSQL: the server does not accept SSL connections")


_PREAMBLES: dict[
    StartTLS, Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
] = {"smtp": _smtp, "imap": _imap, "postgres": _postgres}
