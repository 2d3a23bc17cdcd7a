"""A real Prometheus holding one backup set's series for the last 8 hours (backfilled with
promtool), for the graphs on the incident page and in mail."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.conftest import free_port, require_tool
from tests.dashboards._world_helpers import query, running, wait_until

SERIES = 'job="maintwatch",instance="127.0.0.1:9839",backup="tongacp_db"'
EXPR = (
    "(time() - maintwatch_backup_last_timestamp_seconds) > 1 * maintwatch_backup_max_age_seconds"
    " and on (job, instance, backup) maintwatch_backup_files > 0"
)


def _openmetrics(now: int) -> str:
    """Return 8 h of a backup set that stopped 28 h ago, with a 26 h cadence."""
    lines = []
    values = {
        "maintwatch_backup_last_timestamp_seconds": now - 28 * 3600,
        "maintwatch_backup_max_age_seconds": 26 * 3600,
        "maintwatch_backup_files": 7,
    }
    for name, value in values.items():
        lines += [f"# HELP {name} test", f"# TYPE {name} gauge"]
        lines += [f"{name}{{{SERIES}}} {value} {t}" for t in range(now - 8 * 3600, now - 30, 60)]
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run Prometheus on a TSDB backfilled (promtool) with the alert's series; return its URL."""
    binary, promtool = require_tool("prometheus"), require_tool("promtool")
    root = tmp_path_factory.mktemp("graph-prometheus")
    (root / "data.om").write_text(_openmetrics(int(time.time())))
    subprocess.run(
        [
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(root / "data.om"),
            str(root / "tsdb"),
        ],
        check=True,
        capture_output=True,
    )
    (root / "prometheus.yml").write_text("global: {scrape_interval: 1m}\n")
    port = free_port()
    args = [
        binary,
        f"--config.file={root / 'prometheus.yml'}",
        f"--storage.tsdb.path={root / 'tsdb'}",
    ]
    args += [f"--web.listen-address=127.0.0.1:{port}"]
    base = f"http://127.0.0.1:{port}"
    with running(args, root / "prometheus.log"):
        wait_until(
            lambda: _has_data(base),
            "Prometheus serving the backfilled series",
            root / "prometheus.log",
        )
        yield base


def _has_data(base: str) -> bool:
    try:
        return bool(query(base, "maintwatch_backup_max_age_seconds")["data"]["result"])
    except (OSError, ValueError):  # not up yet, or still answering "Service Unavailable"
        return False


def generator_url(base: str) -> str:
    """Return the generatorURL Prometheus gives the BackupTooOld alert of EXPR."""
    return f"{base}/graph?g0.expr={quote(EXPR)}&g0.tab=1"
