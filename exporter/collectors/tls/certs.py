"""Read X.509 certificates (PEM bundles, DER) and verify offline chains with `cryptography`.

Pure helpers shared by the `tls` collector: no sockets here. File targets are verified with
cryptography's path validation because there is no handshake to let OpenSSL do it.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509 import verification

from exporter.paths import open_regular

INFO_MAX_CHARS = 200
"""Longest value of a `maintwatch_tls_cert_info` label (DESIGN: free text only truncated)."""

MAX_FILE_BYTES = 4 * 1024 * 1024
"""Certificate bundles are small; refuse anything larger rather than read it into memory."""


class CertError(Exception):
    """A certificate file or blob cannot be used; the message says why."""


@dataclass(frozen=True)
class CertSummary:
    """What the metrics say about one leaf certificate."""

    not_before: float
    not_after: float
    subject: str
    issuer: str
    serial: str
    dns_names: str


def truncate(text: str, limit: int = INFO_MAX_CHARS) -> str:
    """Return `text` cut to `limit` characters, marking the cut with `...`."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_certificates(data: bytes, source: str) -> list[x509.Certificate]:
    """Parse a PEM bundle (leaf first) or a single DER certificate; raise CertError."""
    try:
        if b"-----BEGIN" in data:
            # Other PEM blocks (a private key in a combined file) are skipped by cryptography.
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CertError(f"{source}: not a PEM or DER certificate ({exc})") from None


def read_certificate_file(path: Path) -> list[x509.Certificate]:
    """Read one certificate file (bounded size); raise CertError naming the file."""
    try:
        with open_regular(str(path)) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise CertError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise CertError(f"{path}: larger than {MAX_FILE_BYTES} bytes, not a certificate bundle")
    return parse_certificates(data, str(path))


def summarize(cert: x509.Certificate) -> CertSummary:
    """Return the fields reported for a leaf certificate."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        names = []
    return CertSummary(
        not_before=cert.not_valid_before_utc.timestamp(),
        not_after=cert.not_valid_after_utc.timestamp(),
        subject=truncate(cert.subject.rfc4514_string()),
        issuer=truncate(cert.issuer.rfc4514_string()),
        serial=format(cert.serial_number, "x"),
        dns_names=truncate(",".join(names)),
    )


def chain_not_after(certs: Sequence[x509.Certificate]) -> float:
    """Return the earliest expiry among `certs` (leaf and intermediates)."""
    return min(c.not_valid_after_utc.timestamp() for c in certs)


def load_trust_store(ca_file: Path | None) -> verification.Store:
    """Return a Store from `ca_file`, or from the system bundle OpenSSL uses by default."""
    path = ca_file or Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-bundle.crt")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CertError(f"{path}: cannot read CA bundle: {exc.strerror}") from None
    certs = parse_certificates(data, str(path))
    return verification.Store(certs)


def verify_chain(
    certs: Sequence[x509.Certificate],
    store: verification.Store,
    server_name: str | None,
    now: datetime.datetime,
) -> str | None:
    """Return None if `certs` (leaf first) chain to `store` and match `server_name`, else why."""
    # The default (CA/B Forum web PKI) profile rejects many private-CA certificates that
    # OpenSSL and every TLS client accept (a critical SAN, a CA without keyUsage). Keep the
    # checks OpenSSL makes: signatures, validity, CA basicConstraints, and the name when asked.
    anything = verification.ExtensionPolicy.permit_all()
    ca_policy = anything.require_present(
        x509.BasicConstraints, verification.Criticality.AGNOSTIC, None
    )
    builder = verification.PolicyBuilder().store(store).time(now)
    leaf, intermediates = certs[0], list(certs[1:])
    try:
        if server_name is None:
            builder = builder.extension_policies(ca_policy=ca_policy, ee_policy=anything)
            builder.build_client_verifier().verify(leaf, intermediates)
        else:
            # A server verifier insists that the leaf policy requires a subjectAltName.
            ee_policy = anything.require_present(
                x509.SubjectAlternativeName, verification.Criticality.AGNOSTIC, None
            )
            builder = builder.extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
            builder.build_server_verifier(_subject(server_name)).verify(leaf, intermediates)
    except (verification.VerificationError, ValueError) as exc:
        return str(exc)
    return None


def _subject(server_name: str) -> x509.DNSName | x509.IPAddress:
    try:
        return x509.IPAddress(ipaddress.ip_address(server_name))
    except ValueError:
        return x509.DNSName(server_name)
