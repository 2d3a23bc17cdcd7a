"""The maintwatch dashboards: an overview and one per area, thresholds from thresholds.yaml."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dashboards.builder import Panel, dashboard
from dashboards.panels_core import backups, overview, queues
from dashboards.panels_drills import drills
from dashboards.panels_more import apps, databases, services, tls
from rules.model import Thresholds

Builder = Callable[[Thresholds], list[Panel]]
DASHBOARDS: dict[str, tuple[str, str, Builder]] = {
    "overview": ("maintwatch: overview", "Is maintenance healthy?", overview),
    "backups": (
        "maintwatch: backups",
        "Backup freshness, size, rotation, integrity, restore drills.",
        lambda t: [*backups(t), *drills(t)],
    ),
    "queues": ("maintwatch: queues & workers", "Queues, failed jobs, Supervisor.", queues),
    "databases": ("maintwatch: databases", "Connections and slow queries.", databases),
    "tls": ("maintwatch: certificates", "TLS certificate expiry and verification.", tls),
    "apps": ("maintwatch: applications", "Maintenance mode, logs, health checks.", apps),
    "services": ("maintwatch: hosts & services", "node/blackbox exporters and SLOs.", services),
}


def build_all(t: Thresholds) -> dict[str, dict[str, Any]]:
    """Return every dashboard, keyed by file stem (pure)."""
    return {
        stem: dashboard(f"maintwatch-{stem}", title, desc, build(t), t.runbook_base_url)
        for stem, (title, desc, build) in DASHBOARDS.items()
    }
