"""The certificates dashboard: leaf and chain expiry, verification, probe success."""

from __future__ import annotations

from dashboards.builder import Board, Panel, Query
from dashboards.levels import below
from rules.model import Thresholds


def panels(t: Thresholds) -> list[Panel]:
    """Return the certificate panels."""
    return [
        Panel(
            "Leaf certificate expires in",
            "Time left until each leaf certificate expires.",
            "s",
            [Query("maintwatch_tls_cert_not_after_timestamp_seconds - time()", "{{target}}")],
            "stat",
            12,
            6,
            below(t, "TLSCertificateExpiringSoon"),
            ["TLSCertificateExpiringSoon", "TLSCertificateExpired"],
        ),
        Panel(
            "Chain expires in",
            "Time left until the earliest expiry in the presented chain.",
            "s",
            [Query("maintwatch_tls_chain_not_after_timestamp_seconds - time()", "{{target}}")],
            "stat",
            12,
            6,
            below(t, "TLSCertificateExpiringSoon"),
            ["TLSCertificateExpiringSoon"],
        ),
        Panel(
            "Verified",
            "Chain and host name verify (1) or not (0).",
            "bool_yes_no",
            [Query("maintwatch_tls_cert_verified", "{{target}}")],
            "stat",
            12,
            6,
            [(0, "critical"), (1, "ok")],
            ["TLSCertificateNotVerified"],
        ),
        Panel(
            "Probe success",
            "Handshake or file read succeeded (1) or not (0).",
            "bool_yes_no",
            [Query("maintwatch_tls_probe_success", "{{target}}")],
            "stat",
            12,
            6,
            [(0, "warning"), (1, "ok")],
            ["TLSProbeFailed"],
        ),
    ]


BOARD = Board(
    stem="tls",
    title="maintwatch: certificates",
    description="TLS certificate expiry and verification.",
    panels=panels,
)
