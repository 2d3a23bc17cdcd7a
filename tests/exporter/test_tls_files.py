"""The tls collector on certificate files: PEM bundles, DER, globs, and files that are not PEM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from structlog.testing import capture_logs

from exporter.collectors.base import Context
from exporter.collectors.tls.collector import TlsCollector, TlsConfig
from tests.exporter._tls_helpers import DAY, NOW, Pki, issue
from tests.exporter.conftest import Samples, promtool_check, refresh


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """Return a fresh root + intermediate writing files under the test's temp dir."""
    return Pki(tmp_path)


async def read(context: Context, path: Path | str, **fields: Any) -> Samples:
    """Refresh a path target once."""
    config = TlsConfig.model_validate({"name": "certs", "path": str(path), **fields})
    return await refresh(TlsCollector(config, context))


async def test_fullchain_bundle_with_key(context: Context, pki: Pki) -> None:
    leaf = pki.leaf("svc.test")
    # A combined file (haproxy style) also holds the private key: it is skipped, not an error.
    path = pki.write("svc.pem", leaf.pem(), pki.intermediate.pem(), leaf.key_pem())
    samples = await read(context, path, ca_file=str(pki.root_file()), server_name="svc.test")
    assert samples.get("maintwatch_tls_probe_success", target="certs") == 1
    assert samples.get("maintwatch_tls_files") == 1
    assert samples.get("maintwatch_tls_cert_verified") == 1
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") == leaf.timestamps()[1]
    assert samples.get("maintwatch_tls_chain_not_after_timestamp_seconds") == leaf.timestamps()[1]


async def test_glob_reports_earliest_leaf_and_earliest_chain(context: Context, pki: Pki) -> None:
    soon = pki.leaf("a.test", not_after=NOW + 5 * DAY)
    later = pki.leaf("b.test", not_after=NOW + 60 * DAY)
    short = issue("short intermediate", issuer=pki.root, ca=True, not_after=NOW + 3 * DAY)
    third = issue("c.test", issuer=short, dns_names=["c.test"], not_after=NOW + 30 * DAY)
    (pki.directory / "live").mkdir()
    pki.write("live/a.pem", soon.pem(), pki.intermediate.pem())
    pki.write("live/b.pem", later.pem(), pki.intermediate.pem())
    pki.write("live/c.pem", third.pem(), short.pem())
    samples = await read(context, pki.directory / "live" / "*.pem", ca_file=str(pki.root_file()))
    assert samples.get("maintwatch_tls_files") == 3
    assert samples.get("maintwatch_tls_cert_verified") == 1
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") == soon.timestamps()[1]
    assert samples.get("maintwatch_tls_chain_not_after_timestamp_seconds") == short.timestamps()[1]
    [(labels, _)] = samples.all("maintwatch_tls_cert_info")
    assert labels["dns_names"] == "a.test"


async def test_der_file(context: Context, pki: Pki) -> None:
    leaf = pki.leaf("svc.test")
    path = pki.directory / "svc.der"
    path.write_bytes(leaf.cert.public_bytes(serialization.Encoding.DER))
    samples = await read(context, path, ca_file=str(pki.root_file()))
    assert samples.get("maintwatch_tls_probe_success") == 1
    # The intermediate is not in the file, so the chain cannot be built.
    assert samples.get("maintwatch_tls_cert_verified") == 0


@pytest.mark.parametrize(
    ("server_name", "verified"), [("svc.test", 1), ("other.test", 0), (None, 1)]
)
async def test_file_host_name_check(
    context: Context, pki: Pki, server_name: str | None, verified: int
) -> None:
    path = pki.write("svc.pem", pki.leaf("svc.test").pem(), pki.intermediate.pem())
    fields = {"server_name": server_name} if server_name else {}
    samples = await read(context, path, ca_file=str(pki.root_file()), **fields)
    assert samples.get("maintwatch_tls_cert_verified") == verified


async def test_expired_file_is_read_and_unverified(context: Context, pki: Pki) -> None:
    leaf = pki.leaf("svc.test", not_before=NOW - 30 * DAY, not_after=NOW - DAY)
    path = pki.write("old.pem", leaf.pem(), pki.intermediate.pem())
    with capture_logs() as logs:
        samples = await read(context, path, ca_file=str(pki.root_file()))
    assert samples.get("maintwatch_tls_probe_success") == 1
    assert samples.get("maintwatch_tls_cert_verified") == 0
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") == leaf.timestamps()[1]
    [event] = logs
    assert event["event"] == "tls_cert_unverified"


async def test_not_pem_is_probe_failure(context: Context, pki: Pki) -> None:
    path = pki.write("broken.pem", b"this is not a certificate\n")
    with capture_logs() as logs:
        samples = await read(context, path)
    assert samples.get("maintwatch_tls_probe_success") == 0
    assert samples.get("maintwatch_tls_files") == 1
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") is None
    [event] = logs
    assert event["event"] == "tls_probe_failed"
    assert event["reason"].startswith(f"{path}: not a PEM or DER certificate")


async def test_truncated_pem_is_probe_failure(context: Context, pki: Pki) -> None:
    pem = pki.leaf("svc.test").pem()
    path = pki.write("cut.pem", pem[: len(pem) // 2])
    samples = await read(context, path)
    assert samples.get("maintwatch_tls_probe_success") == 0


async def test_one_bad_file_in_glob_fails_probe_but_reports_others(
    context: Context, pki: Pki
) -> None:
    leaf = pki.leaf("svc.test")
    (pki.directory / "live").mkdir()
    pki.write("live/good.pem", leaf.pem(), pki.intermediate.pem())
    pki.write("live/bad.pem", b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    samples = await read(context, pki.directory / "live/*.pem", ca_file=str(pki.root_file()))
    assert samples.get("maintwatch_tls_probe_success") == 0
    assert samples.get("maintwatch_tls_files") == 2
    assert samples.get("maintwatch_tls_cert_not_after_timestamp_seconds") == leaf.timestamps()[1]


async def test_no_match_and_missing_file(context: Context, tmp_path: Path) -> None:
    with capture_logs() as logs:
        none = await read(context, tmp_path / "*.pem")
        missing = await read(context, tmp_path / "gone.pem")
    assert none.get("maintwatch_tls_probe_success") == 0
    assert none.get("maintwatch_tls_files") == 0
    assert missing.get("maintwatch_tls_probe_success") == 0
    assert [e["reason"] for e in logs] == [
        f"no file matches {tmp_path / '*.pem'}",
        f"{tmp_path / 'gone.pem'}: cannot read: No such file or directory",
    ]


async def test_promtool_accepts_output(context: Context, pki: Pki, promtool: str) -> None:
    path = pki.write("svc.pem", pki.leaf("svc.test").pem(), pki.intermediate.pem())
    samples = await read(context, path, ca_file=str(pki.root_file()))
    promtool_check(promtool, samples.text())
