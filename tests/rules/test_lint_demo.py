"""`python -m rules lint` against the demo's own Prometheus: exactly the planted mistakes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maintwatch.demo import queues
from rules.cli import main
from rules.promapi import Prometheus, PrometheusError
from tests.conftest import free_ports, require_tool
from tests.rules._rules_helpers import ROOT

REDIS_URL = "redis://127.0.0.1:6379/0"
RULES = """
groups:
  - name: demo
    rules:
      - alert: BackupSetEmpty
        expr: maintwatch_backup_files{backup="shop_db"} <= 0
        for: 5m
      - alert: BackupTypo
        expr: maintwatch_backup_file <= 0
        for: 5m
      - alert: BackupWrongLabel
        expr: maintwatch_backup_files{backup_set="shop_db"} <= 0
        for: 5m
      - alert: QueueRate
        expr: job:maintwatch_queue_jobs:rate5m > 10
        for: 5m
"""


@pytest.fixture
def demo(tmp_path: Path, unique: str) -> Iterator[str]:
    """Run `python -m maintwatch.demo` (as scripts/demo.sh does); yield its Prometheus URL."""
    require_tool("prometheus")
    require_tool("prometheus-alertmanager")
    exporter, receiver, prometheus, alertmanager = free_ports(4)
    env = {
        **os.environ,
        "MW_DEMO_DIR": str(tmp_path / "demo"),
        "MW_DEMO_EXPORTER_PORT": str(exporter),
        "MW_DEMO_RECEIVER_PORT": str(receiver),
        "MW_DEMO_PROMETHEUS_PORT": str(prometheus),
        "MW_DEMO_ALERTMANAGER_PORT": str(alertmanager),
        "MW_DEMO_REDIS_URL": REDIS_URL,
        "MW_DEMO_REDIS_PREFIX": f"{unique}_database_",
    }
    with (tmp_path / "demo.out").open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "maintwatch.demo"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{prometheus}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        queues.remove(REDIS_URL, f"{unique}_database_")


def _scraped(url: str) -> bool:
    try:
        return bool(Prometheus(url, timeout=5).query('maintwatch_backup_files{backup="shop_db"}'))
    except PrometheusError:
        return False


@pytest.mark.slow
@pytest.mark.e2e
def test_lint_finds_the_misspelt_metric_wrong_label_and_missing_recording_rule(
    demo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deadline = time.monotonic() + 120
    while not _scraped(demo):
        assert time.monotonic() < deadline, "the demo's Prometheus never scraped the exporter"
        time.sleep(1)
    path = tmp_path / "demo.rules.yml"
    path.write_text(RULES, encoding="utf-8")
    assert main(["lint", "--prometheus.url", demo, str(path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{path}: demo/BackupTypo: metric maintwatch_backup_file has no series;"
        " did you mean maintwatch_backup_files?",
        f"{path}: demo/BackupWrongLabel: label backup_set is on no series of"
        " maintwatch_backup_files (its labels: backup, instance, job)",
        f"{path}: demo/QueueRate: recording rule job:maintwatch_queue_jobs:rate5m is defined in"
        " no rule file and has no data",
    ]
    assert "4 rules in 1 files: 3 error(s), 0 warning(s)" in err
