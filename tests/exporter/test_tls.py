"""The tls collector against real TLS servers on this machine (direct and STARTTLS)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from structlog.testing import capture_logs

from exporter.collectors.base import Context
from exporter.collectors.registry import load_config_text
from exporter.collectors.tls.collector import TlsCollector, TlsConfig
from exporter.runtime import Runtime
from maintwatch.configload import ConfigError
from tests.conftest import free_port
from tests.exporter._tls_helpers import (
    DAY,
    NOW,
    Issued,
    Pki,
    issue,
    serve_plain,
    serve_starttls,
    serve_tls,
)
from tests.exporter.conftest import Samples, promtool_check, refresh


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """Return a fresh root + intermediate writing files under the test's temp dir."""
    return Pki(tmp_path)


def collector(context: Context, **fields: Any) -> TlsCollector:
    """Build a tls collector from config fields (validated like the YAML would be)."""
    return TlsCollector(TlsConfig.model_validate({"name": "web", **fields}), context)


async def probe(context: Context, pki: Pki, leaf: Issued, **fields: Any) -> Samples:
    """Serve `leaf` (+ the intermediate unless `chain` is given) and refresh once."""
    chain = fields.pop("chain", None)
    fields.setdefault("ca_file", str(pki.root_file()))
    fields.setdefault("server_name", "svc.test")
    async with serve_tls(pki.server_context(leaf, chain)) as port:
        return await refresh(collector(context, endpoint=f"127.0.0.1:{port}", **fields))


def expiry(issued: Issued) -> float:
    """Return the certificate's not-after as Unix time."""
    return issued.timestamps()[1]


async def test_valid_chain_reports_leaf_chain_and_identity(context: Context, pki: Pki) -> None:
    leaf = pki.leaf("svc.test", "www.svc.test")
    samples = await probe(context, pki, leaf)
    assert samples.get("maintwatch_tls_probe_success", target="web") == 1
    assert samples.get("maintwatch_tls_cert_verified", target="web") == 1
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") == expiry(leaf)
    assert samples.get("maintwatch_tls_cert_not_before_timestamp_seconds") == leaf.timestamps()[0]
    # The intermediate outlives the leaf, so the leaf is the earliest expiry in the chain.
    assert samples.get("maintwatch_tls_chain_not_after_timestamp_seconds") == expiry(leaf)
    [(labels, value)] = samples.all("maintwatch_tls_cert_info")
    assert value == 1
    assert labels == {
        "target": "web",
        "subject": "CN=svc.test",
        "issuer": "CN=maintwatch test intermediate",
        "serial": format(leaf.cert.serial_number, "x"),
        "dns_names": "svc.test,www.svc.test",
    }
    assert samples.get("maintwatch_tls_files") is None  # only path targets count files


async def test_intermediate_expiring_first_sets_chain_expiry(context: Context, pki: Pki) -> None:
    short = issue("short intermediate", issuer=pki.root, ca=True, not_after=NOW + 10 * DAY)
    leaf = issue("svc.test", issuer=short, dns_names=["svc.test"], not_after=NOW + 80 * DAY)
    samples = await probe(context, pki, leaf, chain=[short])
    assert samples.get("maintwatch_tls_cert_verified") == 1
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") == expiry(leaf)
    assert samples.get("maintwatch_tls_chain_not_after_timestamp_seconds") == expiry(short)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", "expired"),
        ("not_yet_valid", "not yet valid"),
        ("wrong_name", "Hostname mismatch"),
        ("self_signed", "self-signed"),
        ("untrusted_by_system", "unable to get local issuer"),
    ],
)
async def test_bad_certificates_are_read_and_unverified(
    context: Context, pki: Pki, case: str, reason: str
) -> None:
    leaf, fields = _bad_case(pki, case)
    with capture_logs() as logs:
        samples = await probe(context, pki, leaf, **fields)
    assert samples.get("maintwatch_tls_probe_success") == 1
    assert samples.get("maintwatch_tls_cert_verified") == 0
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") == expiry(leaf)
    assert samples.get("maintwatch_tls_cert_not_before_timestamp_seconds") == leaf.timestamps()[0]
    [event] = [e for e in logs if e["event"] == "tls_cert_unverified"]
    assert reason in event["reason"]


def _bad_case(pki: Pki, case: str) -> tuple[Issued, dict[str, Any]]:
    if case == "expired":
        return pki.leaf("svc.test", not_before=NOW - 90 * DAY, not_after=NOW - DAY), {}
    if case == "not_yet_valid":
        return pki.leaf("svc.test", not_before=NOW + DAY, not_after=NOW + 90 * DAY), {}
    if case == "wrong_name":
        return pki.leaf("other.test"), {}
    if case == "self_signed":
        return issue("svc.test", dns_names=["svc.test"]), {"chain": []}
    # No ca_file: the system store does not know our private root.
    return pki.leaf("svc.test"), {"ca_file": None}


async def test_log_once_per_outage_and_on_recovery(context: Context, pki: Pki) -> None:
    with capture_logs() as logs:
        tls = collector(
            context,
            endpoint=f"127.0.0.1:{free_port()}",
            server_name="svc.test",
            ca_file=str(pki.root_file()),
        )
        for _ in range(3):
            samples = await refresh(tls)
        async with serve_tls(pki.server_context(pki.leaf("svc.test"))) as port:
            tls = _retarget(tls, port)
            samples = await refresh(tls)
    assert samples.get("maintwatch_tls_probe_success") == 1
    assert samples.get("maintwatch_tls_cert_verified") == 1
    assert [e["event"] for e in logs] == ["tls_probe_failed", "tls_probe_recovered"]
    assert logs[0]["reason"].startswith("connect to 127.0.0.1:")


def _retarget(tls: TlsCollector, port: int) -> TlsCollector:
    # Keep the same object (its log state) but point it at the server that is now up.
    tls.config = tls.config.model_copy(update={"endpoint": f"127.0.0.1:{port}"})
    return tls


async def test_refused_connection_is_probe_failure(context: Context) -> None:
    with capture_logs() as logs:
        samples = await refresh(collector(context, endpoint=f"127.0.0.1:{free_port()}"))
    assert samples.get("maintwatch_tls_probe_success") == 0
    assert samples.get("maintwatch_tls_cert_verified") is None
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") is None
    [event] = logs
    assert event["event"] == "tls_probe_failed"
    assert event["reason"].startswith("connect to 127.0.0.1:")


async def test_plain_text_server_is_probe_failure(context: Context) -> None:
    with capture_logs() as logs:
        async with serve_plain(b"HTTP/1.0 400 Bad Request\r\n\r\nnot tls\r\n") as port:
            samples = await refresh(collector(context, endpoint=f"127.0.0.1:{port}"))
    assert samples.get("maintwatch_tls_probe_success") == 0
    assert "TLS handshake" in logs[0]["reason"]


@pytest.fixture
def smtp_server(pki: Pki) -> Iterator[int]:
    """Run aiosmtpd on a free port, offering STARTTLS with a certificate for svc.test."""
    controller = Controller(
        _NullHandler(),
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=pki.server_context(pki.leaf("svc.test")),
        require_starttls=True,
    )
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


class _NullHandler:
    # aiosmtpd looks hooks up by this exact name.
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


async def test_smtp_starttls(context: Context, pki: Pki, smtp_server: int) -> None:
    tls = collector(
        context,
        endpoint=f"127.0.0.1:{smtp_server}",
        starttls="smtp",
        server_name="svc.test",
        ca_file=str(pki.root_file()),
    )
    samples = await refresh(tls)
    assert samples.get("maintwatch_tls_probe_success") == 1
    assert samples.get("maintwatch_tls_cert_verified") == 1
    [(labels, _)] = samples.all("maintwatch_tls_cert_info")
    assert labels["dns_names"] == "svc.test"


async def test_smtp_without_starttls_is_probe_failure(context: Context) -> None:
    controller = Controller(_NullHandler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        with capture_logs() as logs:
            tls = collector(context, endpoint=f"127.0.0.1:{controller.port}", starttls="smtp")
            samples = await refresh(tls)
    finally:
        controller.stop()
    assert samples.get("maintwatch_tls_probe_success") == 0
    assert logs[0]["reason"] == "SMTP: the server does not offer STARTTLS"


@pytest.mark.parametrize("protocol", ["imap", "postgres"])
async def test_imap_and_postgres_starttls(context: Context, pki: Pki, protocol: str) -> None:
    leaf = pki.leaf("svc.test")
    async with serve_starttls(pki.server_context(leaf), protocol) as port:
        tls = collector(
            context,
            endpoint=f"127.0.0.1:{port}",
            starttls=protocol,
            server_name="svc.test",
            ca_file=str(pki.root_file()),
        )
        samples = await refresh(tls)
    assert samples.get("maintwatch_tls_probe_success") == 1
    assert samples.get("maintwatch_tls_cert_verified") == 1
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") == expiry(leaf)


async def test_postgres_refusing_ssl_is_probe_failure(context: Context) -> None:
    with capture_logs() as logs:
        async with serve_plain(b"N") as port:
            tls = collector(context, endpoint=f"127.0.0.1:{port}", starttls="postgres")
            samples = await refresh(tls)
    assert samples.get("maintwatch_tls_probe_success") == 0
    assert logs[0]["reason"] == "PostgreSQL: the server does not accept SSL connections"


async def test_promtool_accepts_output(context: Context, pki: Pki, promtool: str) -> None:
    samples = await probe(context, pki, pki.leaf("svc.test"))
    promtool_check(promtool, samples.text())


async def test_probe_stays_under_the_runtime_timeout(context: Context) -> None:
    # A server that accepts TCP and never answers the ClientHello.
    async with serve_plain(b"") as port:
        endpoint = f"127.0.0.1:{port}"
        own_deadline = collector(context, endpoint=endpoint, timeout="0.5s")
        cut_by_runtime = TlsCollector(
            TlsConfig(name="slow", endpoint=endpoint), context
        )  # no instance timeout: the runtime's effective 0.3 s bounds the probe
        runtime = Runtime(context.logger)
        try:
            await runtime.apply([(own_deadline, 60.0, 0.5), (cut_by_runtime, 60.0, 0.3)])
            async with asyncio.timeout(10):
                await runtime.wait_ready()
            samples = Samples(runtime.families())
        finally:
            await runtime.close()
    assert samples.get("maintwatch_collector_up", collector="tls", name="web") == 1
    assert samples.get("maintwatch_tls_probe_success", target="web") == 0
    # The probe gives up before the runtime would cancel it, so the failure is a probe result.
    assert samples.get("maintwatch_collector_up", collector="tls", name="slow") == 1
    assert samples.get("maintwatch_tls_probe_success", target="slow") == 0


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("{name: a}", "set exactly one of endpoint (host:port) or path (file or glob)"),
        ("{name: a, endpoint: 'h:1', path: /x}", "set exactly one of endpoint"),
        ("{name: a, endpoint: 'example.com'}", "endpoint 'example.com' must be host:port"),
        ("{name: a, endpoint: 'h:70000'}", "with a port of 1-65535"),
        ("{name: a, path: /x, starttls: smtp}", "starttls applies to an endpoint"),
        ("{name: a, endpoint: 'h:25', starttls: pop3}", "expected one of: smtp, imap"),
        ("{name: a, endpoint: 'h:1', ca_file: /nonexistent.pem}", "does not exist"),
    ],
)
def test_config_errors_are_located(item: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(f"tls:\n  - {item}\n", "x.yml")
    [problem] = caught.value.problems
    assert problem.startswith("x.yml: tls[0]")
    assert message in problem


def test_ipv6_endpoint_parses() -> None:
    config = load_config_text("tls:\n  - {name: a, endpoint: '[::1]:443'}\n", "x.yml")
    assert config.instances()["tls"][0].name == "a"
