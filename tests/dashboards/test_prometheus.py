"""Every dashboard query runs on a real Prometheus scraping a real exporter of a demo world."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port, require_tool
from tests.dashboards._world_helpers import (
    EXPORTER,
    ROOT,
    build_world,
    prometheus_config,
    query,
    running,
    traffic,
    wait_until,
)

# Metric families whose collectors the demo world runs (backups, tls, apps, http, self); its
# one restore drill extracts a tarball, so no drill counts table rows.
WORLD = re.compile(
    r"maintwatch_(?!backup_drill_table_rows)"
    r"(backup|tls|app|log_messages|http_responses|directory|http_probe|collector|build)_?"
)
OTHER = re.compile(r"\b(maintwatch_[a-z_]+|node_|probe_|pg_|mysql_|http_requests|instance:|job:)")


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
    """Start the exporter on a demo world and Prometheus scraping it; return Prometheus' URL."""
    binary = require_tool("prometheus")
    root = tmp_path_factory.mktemp("world")
    exporter_port, prom_port = free_port(), free_port()
    config = build_world(root, exporter_port)
    rules = sorted((ROOT / "rules").glob("*.rules.yml"))
    prom_config = prometheus_config(root, exporter_port, rules)
    exporter_args = [str(EXPORTER), "--config.file", str(config)]
    exporter_args += ["--web.listen-address", f"127.0.0.1:{exporter_port}"]
    prom_args = [binary, f"--config.file={prom_config}", f"--storage.tsdb.path={root / 'tsdb'}"]
    prom_args += [f"--web.listen-address=127.0.0.1:{prom_port}"]
    base = f"http://127.0.0.1:{prom_port}"
    with (
        running(exporter_args, root / "exporter.log"),
        running(prom_args, root / "prometheus.log"),
        traffic(root / "app" / "storage" / "logs" / "access.log"),
    ):
        # Rates need several samples: wait until Prometheus holds 5 scrapes with verify results.
        wait_until(
            lambda: _samples(base, "maintwatch_backup_last_verify_success") >= 5,
            "five scrapes of the exporter",
            root / "prometheus.log",
        )
        yield base


def _samples(base: str, metric: str) -> float:
    result = query(base, f"count_over_time({metric}[1m])")["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


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


def test_expects_data_classification() -> None:
    assert expects_data("time() - maintwatch_backup_last_timestamp_seconds")
    assert not expects_data('sum(maintwatch_queue_jobs{state="pending"})')
    assert not expects_data("up")
    assert not expects_data("1 - node_memory_MemAvailable_bytes")


def test_world_helper_paths_exist() -> None:
    assert Path(EXPORTER).is_file()
