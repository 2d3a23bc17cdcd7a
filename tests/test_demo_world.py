"""The demo's pure parts: the world it writes, the demo thresholds, settings, traffic lines."""

from __future__ import annotations

import gzip
import os
import tarfile
import time
import zlib
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from maintwatch.demo import stack, supervisor, traffic, world
from maintwatch.demo.settings import SettingsError, from_env

REPO = Path(__file__).resolve().parents[1]
NOW = 1_800_000_000.0


def test_backups_are_healthy_stale_and_corrupt(tmp_path: Path) -> None:
    root = world.write_backups(tmp_path, NOW)
    healthy = sorted((root / "shop_db").iterdir())
    assert len(healthy) == 3
    assert gzip.decompress(healthy[-1].read_bytes()).endswith(b"\n")
    assert b"-- Dump completed on" in gzip.decompress(healthy[-1].read_bytes())
    assert NOW - healthy[-1].stat().st_mtime == pytest.approx(3 * 3600)
    files = sorted((root / "shop_files").iterdir())
    assert NOW - files[-1].stat().st_mtime == pytest.approx(2 * 3600)
    media = sorted((root / "shop_media").iterdir())
    assert NOW - media[-1].stat().st_mtime > 3 * 86400
    with tarfile.open(media[-1]) as archive:
        assert len(archive.getmembers()) == 3
    reports = sorted((root / "shop_reports").iterdir())
    gzip.decompress(reports[0].read_bytes())
    with pytest.raises((EOFError, zlib.error, gzip.BadGzipFile)):
        gzip.decompress(reports[-1].read_bytes())


def test_certificate_expires_in_five_days(tmp_path: Path) -> None:
    leaf_path, ca_path = world.write_certificates(tmp_path, time.time())
    leaf = x509.load_pem_x509_certificate(leaf_path.read_bytes())
    ca = x509.load_pem_x509_certificate(ca_path.read_bytes())
    left = leaf.not_valid_after_utc.timestamp() - time.time()
    assert 4.9 * 86400 < left < 5.1 * 86400
    assert leaf.issuer == ca.subject
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [world.CERT_HOST]


def test_app_is_down_for_maintenance(tmp_path: Path) -> None:
    app, log = world.write_app(tmp_path / "shop", NOW)
    down = app / "storage" / "framework" / "down"
    assert NOW - down.stat().st_mtime == world.MAINTENANCE_SINCE
    assert log.read_text().startswith("[")
    assert "production.INFO:" in log.read_text()


def test_traffic_alternates_info_and_error() -> None:
    lines = [traffic.entry(tick, NOW) for tick in range(4)]
    assert [".ERROR:" in line for line in lines] == [False, True, False, True]
    assert all(line.endswith("\n") for line in lines)


def test_traffic_run_appends_until_stopped(tmp_path: Path) -> None:
    class StopAfter:
        def __init__(self) -> None:
            self.calls = 0

        def is_set(self) -> bool:
            return self.calls >= 3

        def wait(self, timeout: float) -> bool:
            self.calls += 1
            return self.is_set()

    log = tmp_path / "laravel.log"
    assert traffic.run(log, 0.0, StopAfter()) == 3  # type: ignore[arg-type]
    assert len(log.read_text().splitlines()) == 3


def test_demo_thresholds_shorten_only_the_demo_alerts() -> None:
    source = yaml.safe_load((REPO / "rules" / "thresholds.yaml").read_text())
    demo = stack.demo_thresholds(source)
    assert demo["runbook_base_url"] == "docs/runbooks"  # resolved and served by the receiver
    assert demo["alerts"]["BackupTooOld"]["for"] == stack.DEMO_FOR
    assert demo["alerts"]["AppErrorRateHigh"]["params"]["window"] == "1m"
    # Held past Prometheus' first Alertmanager discovery, so the first one is not dropped.
    assert demo["alerts"]["Watchdog"]["for"] == stack.DEMO_FOR
    # Trend alerts keep their production `for`: a few minutes of data would make them noise.
    assert demo["alerts"]["BackupVolumeFillingUp"] == source["alerts"]["BackupVolumeFillingUp"]
    assert set(stack.DEMO_ALERTS) <= set(source["alerts"]), "a demo alert was renamed in rules/"
    assert source["alerts"]["BackupTooOld"]["for"] != stack.DEMO_FOR, "source left unchanged"


def test_settings_from_env_defaults_and_errors(tmp_path: Path) -> None:
    settings = from_env({"MW_DEMO_DIR": str(tmp_path)})
    assert dict(settings.ports) == {
        "exporter": 9839,
        "receiver": 9840,
        "prometheus": 19090,
        "alertmanager": 19093,
    }
    assert settings.layout.root == tmp_path
    assert from_env({"MW_DEMO_REDIS_URL": "off"}).redis_url is None
    with pytest.raises(SettingsError, match="MW_DEMO_RECEIVER_PORT='70000'"):
        from_env({"MW_DEMO_RECEIVER_PORT": "70000"})
    with pytest.raises(SettingsError, match="two services on port 9839"):
        from_env({"MW_DEMO_RECEIVER_PORT": "9839"})
    with pytest.raises(SettingsError, match="MW_DEMO_REDIS_PREFIX"):
        from_env({"MW_DEMO_REDIS_PREFIX": "has space"})


def test_supervisord_config_escapes_percent_and_sends_receiver_to_terminal(
    tmp_path: Path,
) -> None:
    settings = from_env({"MW_DEMO_DIR": str(tmp_path / "100%demo")})
    programs = supervisor.core_programs(settings, tmp_path / "laravel.log")
    text = supervisor.render(settings.layout, programs)
    assert "100%%demo" in text
    receiver = text.split("[program:receiver]")[1].split("[program:")[0]
    assert "stdout_logfile=/dev/stdout" in receiver
    assert os.sep + "receiver.log" in receiver
