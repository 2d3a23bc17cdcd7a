"""TLS certificates of endpoints (host:port, optional STARTTLS) and of PEM files or globs.

An unreachable endpoint or unreadable file is not a collector failure: it is reported as
`maintwatch_tls_probe_success 0` (and logged once), like blackbox_exporter's probe_success.
An expired, self-signed or misnamed certificate is still read and reported, with
`maintwatch_tls_cert_verified 0`.
"""

from __future__ import annotations

import asyncio
import datetime
import glob
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from cryptography import x509
from prometheus_client.core import Metric
from pydantic import AfterValidator, model_validator

from exporter.collectors.base import Collector, Context
from exporter.collectors.tls.certs import (
    CertError,
    chain_not_after,
    load_trust_store,
    read_certificate_file,
    summarize,
    verify_chain,
)
from exporter.collectors.tls.probe import Endpoint, ProbeError, StartTLS, probe
from exporter.config import InstanceConfig
from exporter.metrics import MetricSet, gauge
from exporter.paths import check_glob
from maintwatch.configload import ExistingFile

TLS_PROBE_SUCCESS = gauge(
    "maintwatch_tls_probe_success", "1 if the TLS handshake or certificate file read succeeded."
)
TLS_FILES = gauge("maintwatch_tls_files", "Certificate files matched by the path.")
TLS_CERT_NOT_AFTER_TIMESTAMP_SECONDS = gauge(
    "maintwatch_tls_cert_not_after_timestamp_seconds", "Expiry of the leaf certificate (Unix time)."
)
TLS_CERT_NOT_BEFORE_TIMESTAMP_SECONDS = gauge(
    "maintwatch_tls_cert_not_before_timestamp_seconds",
    "Start of validity of the leaf certificate (Unix time).",
)
TLS_CHAIN_NOT_AFTER_TIMESTAMP_SECONDS = gauge(
    "maintwatch_tls_chain_not_after_timestamp_seconds",
    "Earliest expiry of any certificate presented (leaf and intermediates, Unix time).",
)
TLS_CERT_VERIFIED = gauge(
    "maintwatch_tls_cert_verified",
    "1 if the chain verifies against the trust store and matches the host name.",
)
TLS_CERT_INFO = gauge(
    "maintwatch_tls_cert_info",
    "Identity of the leaf certificate (values truncated).",
    "subject",
    "issuer",
    "serial",
    "dns_names",
)

MAX_FILES = 1000  # a glob over a whole filesystem is a mistake, not a certificate set


class TlsConfig(InstanceConfig):
    """One TLS target: exactly one of `endpoint` (host:port) or `path` (file or glob)."""

    endpoint: str | None = None
    path: Annotated[str, AfterValidator(check_glob)] | None = None
    server_name: str | None = None
    starttls: StartTLS | None = None
    ca_file: ExistingFile | None = None

    @model_validator(mode="after")
    def _one_target(self) -> TlsConfig:
        if (self.endpoint is None) == (self.path is None):
            raise ValueError("set exactly one of endpoint (host:port) or path (file or glob)")
        if self.endpoint is not None:
            split_endpoint(self.endpoint)
        elif self.starttls is not None:
            raise ValueError("starttls applies to an endpoint, not to a path")
        return self


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """Split `host:port` or `[v6]:port`; raise ValueError naming the problem."""
    host, sep, port_text = endpoint.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"endpoint {endpoint!r} must be host:port with a port of 1-65535")
    return host, int(port_text)


@dataclass
class Reading:
    """The outcome of one probe, before it becomes metrics."""

    error: str | None = None  # why the probe failed (handshake, file read); None on success
    chains: list[list[x509.Certificate]] = field(default_factory=list)
    verify_error: str | None = None
    files: int | None = None  # files matched, for path targets


class TlsCollector(Collector[TlsConfig]):
    """Report leaf and chain expiry, verification and identity of one TLS target."""

    kind = "tls"
    label = "target"
    config_type = TlsConfig
    metrics = (
        TLS_PROBE_SUCCESS,
        TLS_FILES,
        TLS_CERT_NOT_AFTER_TIMESTAMP_SECONDS,
        TLS_CERT_NOT_BEFORE_TIMESTAMP_SECONDS,
        TLS_CHAIN_NOT_AFTER_TIMESTAMP_SECONDS,
        TLS_CERT_VERIFIED,
        TLS_CERT_INFO,
    )

    def __init__(self, config: TlsConfig, context: Context) -> None:
        super().__init__(config, context)
        self._last_error: str | None = None
        self._last_verify_error: str | None = None

    async def refresh(self) -> Sequence[Metric]:
        """Probe the endpoint or read the files, and return the TLS families."""
        if self.config.endpoint is not None:
            reading = await self._probe_endpoint(self.config.endpoint)
        else:
            pattern = self.config.path or ""
            reading = await self.blocking.run(lambda: self._read_files(pattern))
        self._log_changes(reading)
        return build_families(self.metric_set(), reading)

    def _probe_timeout(self) -> float:
        return self.own_deadline()

    async def _probe_endpoint(self, text: str) -> Reading:
        host, port = split_endpoint(text)
        endpoint = Endpoint(host, port, self.config.server_name or host, self.config.starttls)
        try:
            async with asyncio.timeout(self._probe_timeout()):
                presented = await probe(endpoint, self.config.ca_file)
            chain = [x509.load_der_x509_certificate(der) for der in presented.chain]
        except TimeoutError:
            return Reading(error=f"no TLS handshake within {self._probe_timeout():g}s")
        except (ProbeError, ValueError) as exc:
            return Reading(error=str(exc))
        return Reading(chains=[chain], verify_error=presented.verify_error)

    def _read_files(self, pattern: str) -> Reading:
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            return Reading(error=f"no file matches {pattern}", files=0)
        if len(paths) > MAX_FILES:
            return Reading(error=f"{len(paths)} files match {pattern}, over {MAX_FILES}")
        reading = Reading(files=len(paths))
        problems: list[str] = []
        for path in paths:
            try:
                reading.chains.append(read_certificate_file(Path(path)))
            except CertError as exc:
                problems.append(str(exc))
        reading.error = "; ".join(problems) or None
        if reading.chains:
            reading.verify_error = self._verify_files(paths, reading.chains)
        return reading

    def _verify_files(self, paths: list[str], chains: list[list[x509.Certificate]]) -> str | None:
        try:
            store = load_trust_store(self.config.ca_file)
        except CertError as exc:
            return str(exc)
        now = datetime.datetime.now(datetime.UTC)
        for path, chain in zip(paths, chains, strict=False):
            error = verify_chain(chain, store, self.config.server_name, now)
            if error is not None:
                return f"{path}: {error}" if len(paths) > 1 else error
        return None

    def _log_changes(self, reading: Reading) -> None:
        # One line per outage or change of reason, not one per refresh.
        if reading.error != self._last_error:
            if reading.error is not None:
                self.log.warning("tls_probe_failed", reason=reading.error)
            elif self._last_error is not None:
                self.log.info("tls_probe_recovered")
        if reading.chains and reading.verify_error != self._last_verify_error:
            if reading.verify_error is not None:
                self.log.warning("tls_cert_unverified", reason=reading.verify_error)
            elif self._last_verify_error is not None:
                self.log.info("tls_cert_verified")
        self._last_error = reading.error
        if reading.chains:
            self._last_verify_error = reading.verify_error


def build_families(ms: MetricSet, reading: Reading) -> list[Metric]:
    """Turn a Reading into the `maintwatch_tls_*` families."""
    ms.add(TLS_PROBE_SUCCESS, 1 if reading.error is None else 0)
    if reading.files is not None:
        ms.add(TLS_FILES, reading.files)
    if not reading.chains:
        return ms.families()
    # For a glob the earliest-expiring leaf stands for the set (labels stay per target).
    chain = min(reading.chains, key=lambda c: c[0].not_valid_after_utc)
    leaf = summarize(chain[0])
    ms.add(TLS_CERT_NOT_AFTER_TIMESTAMP_SECONDS, leaf.not_after)
    ms.add(TLS_CERT_NOT_BEFORE_TIMESTAMP_SECONDS, leaf.not_before)
    ms.add(TLS_CHAIN_NOT_AFTER_TIMESTAMP_SECONDS, min(chain_not_after(c) for c in reading.chains))
    ms.add(TLS_CERT_VERIFIED, 1 if reading.verify_error is None else 0)
    ms.add(
        TLS_CERT_INFO,
        1,
        subject=leaf.subject,
        issuer=leaf.issuer,
        serial=leaf.serial,
        dns_names=leaf.dns_names,
    )
    return ms.families()
