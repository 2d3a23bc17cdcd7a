"""Every dashboard query runs on a real Prometheus scraping a real exporter of a demo world."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from receiver.metricdefs import METRICS as RECEIVER_METRICS
from tests.conftest import free_ports, require_tool
from tests.dashboards._world_helpers import (
    EXPORTER,
    RECEIVER,
    ROOT,
    build_receiver,
    build_world,
    fake_alertmanager,
    prometheus_config,
    query,
    running,
    traffic,
    wait_until,
    webhooks,
)

# Metric families whose collectors the demo world runs (backups, tls, apps, http, self), and
# the receiver's. The world's one restore drill extracts a tarball, so no drill counts table
# rows; the receiver sends no SMS, so it checks none with the provider before a resend.
WORLD = re.compile(
    r"maintwatch_(?!backup_drill_table_rows|receiver_notifications_reconciled)"
    r"(backup|tls|app|log_messages|http_responses|directory|http_probe|collector|build|receiver)_?"
)
OTHER = re.compile(r"\b(maintwatch_[a-z_]+|node_|probe_|pg_|mysql_|http_requests|instance:|job:)")
# The job name docker/prometheus/prometheus.yml scrapes the receiver as.
RECEIVER_JOB = "maintwatch-receiver"


def _queries() -> list[tuple[str, str, str]]:
    out = []
    for path in sorted((ROOT / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                out.append((path.stem, panel["title"], target["expr"]))
    return out


def expects_data(expr: str) -> bool:
    """Return whether the demo world must give `expr` data (only world metrics used)."""
    names = set(OTHER.findall(expr))
    return bool(names) and all(WORLD.match(n) for n in names)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the exporter on a demo world, a receiver taking webhooks, and Prometheus scraping
    both; return Prometheus' URL."""
    binary = require_tool("prometheus")
    root = tmp_path_factory.mktemp("world")
    exporter_port, receiver_port, prom_port = free_ports(3)
    config = build_world(root, exporter_port)
    rules = sorted((ROOT / "rules").glob("*.rules.yml"))
    jobs = {"maintwatch": exporter_port, RECEIVER_JOB: receiver_port}
    prom_config = prometheus_config(root, jobs, rules)
    exporter_args = [str(EXPORTER), "--config.file", str(config)]
    exporter_args += ["--web.listen-address", f"127.0.0.1:{exporter_port}"]
    prom_args = [binary, f"--config.file={prom_config}", f"--storage.tsdb.path={root / 'tsdb'}"]
    prom_args += [f"--web.listen-address=127.0.0.1:{prom_port}"]
    receiver = f"127.0.0.1:{receiver_port}"
    base = f"http://127.0.0.1:{prom_port}"
    with fake_alertmanager() as alertmanager:
        receiver_args = [
            str(RECEIVER),
            f"--config.file={build_receiver(root / 'rx', alertmanager)}",
        ]
        receiver_args += [f"--web.listen-address={receiver}"]
        with (
            running(exporter_args, root / "exporter.log"),
            running(receiver_args, root / "receiver.log"),
            running(prom_args, root / "prometheus.log"),
            traffic(root / "app" / "storage" / "logs" / "access.log"),
            webhooks(f"http://{receiver}/webhooks/alertmanager"),
        ):
            # Rates need several samples: wait until Prometheus holds 5 scrapes with verify
            # results, and every receiver family the world feeds has been there 5 s.
            wait_until(
                lambda: _samples(base, "maintwatch_backup_last_verify_success") >= 5,
                "five scrapes of the exporter",
                root / "prometheus.log",
            )
            wait_until(
                lambda: not _unfed(base),
                "the receiver's series",
                root / "receiver.log",
            )
            yield base


def _samples(base: str, metric: str) -> float:
    result = query(base, f"count_over_time({metric}[1m])")["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def _unfed(base: str) -> set[str]:
    """Return the receiver series names the world feeds that Prometheus lacked 5 s ago."""
    names = {
        f"{m.name}_bucket" if m.type == "histogram" else m.name
        for m in RECEIVER_METRICS
        if WORLD.match(m.name)
    }
    held = query(base, 'count by (__name__) ({__name__=~"maintwatch_receiver_.+"} offset 5s)')
    return names - {r["metric"]["__name__"] for r in held["data"]["result"]}


@pytest.mark.e2e
def test_every_panel_query_runs_and_world_queries_return_data(prometheus: str) -> None:
    empty, failed = [], []
    for board, title, expr in _queries():
        concrete = expr.replace("$__rate_interval", "10s")
        answer = query(prometheus, concrete)
        if answer["status"] != "success":
            failed.append(f"{board}/{title}: {answer.get('error')}: {expr}")
        elif expects_data(expr) and not answer["data"]["result"]:
            empty.append(f"{board}/{title}: {expr}")
    assert not failed, "\n".join(failed)
    assert not empty, "no data for:\n" + "\n".join(empty)


@pytest.mark.e2e
def test_rules_load_and_the_world_fires_what_it_should(prometheus: str) -> None:
    answer = query(prometheus, 'ALERTS{alertname="Watchdog"}')
    assert answer["data"]["result"], "Watchdog is not active"
    # The demo app is in maintenance mode (for < 30 min) and its newest backup is a day old
    # (< 26 h): neither alert may be firing; the self-signed certificate does not verify.
    firing = query(prometheus, 'ALERTS{alertstate="firing"}')["data"]["result"]
    names = {r["metric"]["alertname"] for r in firing}
    assert "AppMaintenanceModeTooLong" not in names
    assert "BackupTooOld" not in names
    pending = query(prometheus, 'ALERTS{alertname="TLSCertificateNotVerified"}')
    assert pending["data"]["result"], "TLSCertificateNotVerified should be pending"


@pytest.mark.e2e
def test_receiver_board_sees_the_receiver_and_its_failing_channel(prometheus: str) -> None:
    board = json.loads((ROOT / "dashboards" / "receiver.json").read_text())
    exprs = {p["title"]: p["targets"][0]["expr"] for p in board["panels"]}
    # The stat falls back to 0 without a target: 1 shows that it selects the receiver's job.
    [up] = query(prometheus, exprs["Receiver up"])["data"]["result"]
    assert up["value"][1] == "1"
    # Every message to the world's `broken` channel fails.
    firing = query(prometheus, exprs["Firing receiver alerts"])["data"]["result"]
    assert "MaintwatchReceiverNotificationsFailing" in {r["metric"]["alertname"] for r in firing}


def test_expects_data_classification() -> None:
    assert expects_data("time() - maintwatch_backup_last_timestamp_seconds")
    assert not expects_data('sum(maintwatch_queue_jobs{state="pending"})')
    assert not expects_data("up")
    assert not expects_data("1 - node_memory_MemAvailable_bytes")
    assert expects_data("max(maintwatch_receiver_outbox_oldest_pending_age_seconds)")
    assert not expects_data("rate(maintwatch_receiver_notifications_reconciled_total[5m])")


def test_world_helper_paths_exist() -> None:
    assert Path(EXPORTER).is_file()
    assert Path(RECEIVER).is_file()


def test_world_scrapes_the_receiver_under_the_job_name_docker_uses() -> None:
    config = yaml.safe_load((ROOT / "docker" / "prometheus" / "prometheus.yml").read_text())
    assert RECEIVER_JOB in {job["job_name"] for job in config["scrape_configs"]}
