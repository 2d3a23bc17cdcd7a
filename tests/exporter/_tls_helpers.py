"""Test PKI made with `cryptography`, and real TLS servers (direct, IMAP/PostgreSQL STARTTLS)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
import struct
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    def pem(self) -> bytes:
        """Return the certificate as PEM."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """Return the private key as unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def timestamps(self) -> tuple[float, float]:
        """Return (not_before, not_after) as Unix time."""
        return (
            self.cert.not_valid_before_utc.timestamp(),
            self.cert.not_valid_after_utc.timestamp(),
        )


def issue(
    common_name: str,
    *,
    issuer: Issued | None = None,
    ca: bool = False,
    dns_names: Sequence[str] = (),
    not_before: datetime.datetime = NOW - DAY,
    not_after: datetime.datetime = NOW + 90 * DAY,
) -> Issued:
    """Issue a certificate signed by `issuer` (self-signed when None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
        builder = builder.add_extension(eku, critical=False)
    if dns_names:
        san = x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names])
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(issuer.key if issuer else key, hashes.SHA256())
    return Issued(cert, key)


class Pki:
    """A root CA and an intermediate, with helpers to issue leaves and write files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.root = issue("maintwatch test root", ca=True, not_after=NOW + 3650 * DAY)
        self.intermediate = issue(
            "maintwatch test intermediate", issuer=self.root, ca=True, not_after=NOW + 365 * DAY
        )

    def leaf(
        self,
        *names: str,
        not_before: datetime.datetime = NOW - DAY,
        not_after: datetime.datetime = NOW + 90 * DAY,
    ) -> Issued:
        """Issue a leaf for `names` under the intermediate."""
        return issue(
            names[0],
            issuer=self.intermediate,
            dns_names=names,
            not_before=not_before,
            not_after=not_after,
        )

    def write(self, filename: str, *parts: bytes) -> Path:
        """Write PEM parts (certificates, keys) concatenated into a file; return its path."""
        path = self.directory / filename
        path.write_bytes(b"".join(parts))
        return path

    def root_file(self) -> Path:
        """Return a CA file holding the root only."""
        return self.write("root.pem", self.root.pem())

    def server_context(self, leaf: Issued, chain: Sequence[Issued] | None = None) -> ssl.SSLContext:
        """Return a server context presenting `leaf` then `chain` (default: the intermediate)."""
        extra = [self.intermediate] if chain is None else list(chain)
        stem = f"srv-{leaf.cert.serial_number:x}"
        certs = self.write(f"{stem}.pem", leaf.pem(), *(c.pem() for c in extra))
        key = self.write(f"{stem}.key", leaf.key_pem())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certs, key)
        return context


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        await reader.read()
    except (ConnectionError, ssl.SSLError):
        pass  # the probe aborts the connection once it has the chain; that is expected
    finally:
        writer.close()


def _imap_preamble(conn: socket.socket) -> None:
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] test ready\r\n")
    tag = conn.recv(1024).split(b" ")[0]
    conn.sendall(b"* informational line\r\n" + tag + b" OK Begin TLS negotiation now\r\n")


def _postgres_preamble(conn: socket.socket) -> None:
    request = conn.recv(8)
    assert struct.unpack("!ii", request) == (8, 80877103)
    conn.sendall(b"S")


_PREAMBLES = {"imap": _imap_preamble, "postgres": _postgres_preamble}


def _serve_starttls_once(conn: socket.socket, protocol: str, context: ssl.SSLContext) -> None:
    with conn:
        conn.settimeout(10)
        try:
            _PREAMBLES[protocol](conn)
            with context.wrap_socket(conn, server_side=True) as tls:
                while tls.recv(1024):
                    pass
        except (OSError, ssl.SSLError):
            pass  # the probe aborts once it has the chain, or rejects it mid-handshake


@contextlib.asynccontextmanager
async def serve_starttls(context: ssl.SSLContext, protocol: str) -> AsyncIterator[int]:
    """Serve IMAP or PostgreSQL STARTTLS from a thread (blocking sockets); yield the port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # lets the accept loop notice `stop`
    stop = threading.Event()

    def accept_loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            _serve_starttls_once(conn, protocol, context)

    thread = threading.Thread(target=accept_loop, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        # Join off the event loop: the probe's socket closes in a loop callback, and the
        # server thread waits for that close.
        await asyncio.to_thread(thread.join)
        listener.close()


class _Connections:
    """Track a test server's handler tasks so shutdown can end them and wait for them."""

    def __init__(self) -> None:
        self.open: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    def add(self, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.open[task] = writer
        task.add_done_callback(lambda t: self.open.pop(t, None))

    async def close(self) -> None:
        # Handlers wait for the peer's EOF; aborting our side delivers it now.
        pending = list(self.open)
        for writer in self.open.values():
            writer.transport.abort()
        await asyncio.gather(*pending, return_exceptions=True)


@contextlib.asynccontextmanager
async def serve_tls(context: ssl.SSLContext) -> AsyncIterator[int]:
    """Serve TLS on a free 127.0.0.1 port; yield the port."""
    connections = _Connections()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        await _drain(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await connections.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def serve_plain(payload: bytes) -> AsyncIterator[int]:
    """Serve a fixed plain-text answer and close (not TLS at all); yield the port."""
    connections = _Connections()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.add(writer)
        writer.write(payload)
        await _drain(reader, writer)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await connections.close()
        await server.wait_closed()
