"""Build the demo world on disk: backup sets (healthy, stale, corrupt), a certificate about to
expire, and a Laravel-style app in maintenance mode with a log.

Every function takes `now` so the world is laid out relative to one moment; file times are set
with `os.utime` so the exporter sees backups written days ago.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOUR = 3600.0
DAY = 24 * HOUR
CERT_HOST = "shop.example.test"
CERT_DAYS_LEFT = 5.0
MAINTENANCE_SINCE = 45 * 60.0  # past the 30 min warning threshold, short of the 1 h critical
APP = "shop"


@dataclass(frozen=True)
class World:
    """Where the built world's pieces are, for the config writer."""

    backups: Path
    cert: Path
    ca: Path
    app: Path
    log: Path


def _stamp(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y%m%d%H%M%S")


def _dump_text(name: str, when: float, rows: int) -> bytes:
    """Return a mariadb-dump-like file ending in the completion trailer the verifier looks for."""
    lines = [f"-- MariaDB dump 10.19  Database: {name}", "SET NAMES utf8mb4;"]
    for i in range(rows):
        digest = hashlib.sha256(f"{name}{when}{i}".encode()).hexdigest()
        # Fake dump text written to a file, never run against a database.
        lines.append(f"INSERT INTO `orders` VALUES ({i},'{digest}','{digest[:16]}');")  # noqa: S608
    day = datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    lines.append(f"-- Dump completed on {day}")
    return ("\n".join(lines) + "\n").encode()


def _write(path: Path, data: bytes, when: float) -> None:
    path.write_bytes(data)
    os.utime(path, (when, when))


def _sql_gz(directory: Path, prefix: str, when: float, rows: int = 400) -> Path:
    path = directory / f"{prefix}_{_stamp(when)}.sql.gz"
    _write(path, gzip.compress(_dump_text(prefix, when, rows), mtime=int(when)), when)
    return path


def _tar_gz(directory: Path, prefix: str, when: float) -> Path:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for index in range(3):
            body = _dump_text(f"media{index}", when, 60)
            info = tarfile.TarInfo(f"media/upload-{index}.txt")
            info.size, info.mtime = len(body), int(when)
            archive.addfile(info, io.BytesIO(body))
    path = directory / f"{prefix}_{_stamp(when)}.tar.gz"
    _write(path, buffer.getvalue(), when)
    return path


def write_backups(root: Path, now: float) -> Path:
    """Write four sets: `shop_db` and `shop_files` healthy, `shop_media` stale (and its
    archive lacks a path its restore drill requires), `shop_reports` corrupt."""
    names = ("shop_db", "shop_files", "shop_media", "shop_reports")
    sets = {name: root / name for name in names}
    for directory in sets.values():
        directory.mkdir(parents=True, exist_ok=True)
    for age in (3 * HOUR, 27 * HOUR, 51 * HOUR):
        _sql_gz(sets["shop_db"], "shop_db", now - age)
    _tar_gz(sets["shop_files"], "shop_files", now - 2 * HOUR)
    for age in (3 * DAY + 2 * HOUR, 4 * DAY + 2 * HOUR):
        _tar_gz(sets["shop_media"], "shop_media", now - age)
    _sql_gz(sets["shop_reports"], "shop_reports", now - 26 * HOUR)
    newest = _sql_gz(sets["shop_reports"], "shop_reports", now - 2 * HOUR)
    # Cut the newest dump short, as a full disk or a killed cron job would: CRC and trailer fail.
    data = newest.read_bytes()
    _write(newest, data[: len(data) - 64], now - 2 * HOUR)
    return root


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[str, ec.EllipticCurvePrivateKey],
    valid: tuple[float, float],
    ca: bool,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer[0]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime.fromtimestamp(valid[0], datetime.UTC))
        .not_valid_after(datetime.datetime.fromtimestamp(valid[1], datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        san = x509.SubjectAlternativeName([x509.DNSName(subject)])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer[1], hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def write_certificates(root: Path, now: float) -> tuple[Path, Path]:
    """Write a demo CA and a leaf for CERT_HOST that expires in ~5 days; return (leaf, ca)."""
    root.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_valid = (now - 400 * DAY, now + 3650 * DAY)
    ca = _certificate("maintwatch demo CA", ca_key, ("maintwatch demo CA", ca_key), ca_valid, True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    valid = (now - 85 * DAY, now + CERT_DAYS_LEFT * DAY)
    leaf = _certificate(CERT_HOST, leaf_key, ("maintwatch demo CA", ca_key), valid, ca=False)
    leaf_path, ca_path = root / f"{CERT_HOST}.pem", root / "demo-ca.pem"
    leaf_path.write_bytes(_pem(leaf))
    ca_path.write_bytes(_pem(ca))
    return leaf_path, ca_path


def log_line(when: float, level: str, message: str) -> str:
    """Return one Laravel (Monolog line format) log entry."""
    stamp = datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"[{stamp}] production.{level.upper()}: {message}\n"


def write_app(root: Path, now: float) -> tuple[Path, Path]:
    """Write a Laravel-style app down for maintenance for 45 minutes; return (app, log)."""
    logs = root / "storage" / "logs"
    framework = root / "storage" / "framework"
    uploads = root / "storage" / "app" / "uploads"
    for directory in (logs, framework, uploads):
        directory.mkdir(parents=True, exist_ok=True)
    log = logs / "laravel.log"
    history = [log_line(now - 3600 + 60 * i, "info", "Order shipped {}") for i in range(20)]
    log.write_text("".join(history), encoding="utf-8")
    # Laravel 8+ `php artisan down` writes this JSON; the exporter takes the file's mtime.
    down: dict[str, object] = {
        "except": [],
        "redirect": None,
        "retry": 60,
        "status": 503,
        "template": None,
    }
    flag = framework / "down"
    flag.write_text(json.dumps(down), encoding="utf-8")
    os.utime(flag, (now - MAINTENANCE_SINCE, now - MAINTENANCE_SINCE))
    for index in range(5):
        (uploads / f"invoice-{index}.pdf").write_bytes(b"%PDF-1.4\n" + bytes(2048 * index))
    return root, log


def build_world(root: Path, now: float) -> World:
    """Lay out the whole demo world under `root` (which the caller has emptied)."""
    backups = write_backups(root / "backups", now)
    cert, ca = write_certificates(root / "certs", now)
    app, log = write_app(root / "app" / APP, now)
    return World(backups=backups, cert=cert, ca=ca, app=app, log=log)
