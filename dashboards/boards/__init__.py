"""The maintwatch dashboards, one module each: an overview and one per area."""

from __future__ import annotations

from typing import Any

from dashboards.boards import apps, backups, databases, overview, queues, receiver, services, tls
from dashboards.builder import Board, dashboard
from rules.model import Thresholds

BOARDS: tuple[Board, ...] = (
    overview.BOARD,
    backups.BOARD,
    queues.BOARD,
    databases.BOARD,
    tls.BOARD,
    apps.BOARD,
    services.BOARD,
    receiver.BOARD,
)


def build_all(t: Thresholds) -> dict[str, dict[str, Any]]:
    """Return every dashboard, keyed by file stem, thresholds from thresholds.yaml (pure)."""
    return {
        board.stem: dashboard(
            f"maintwatch-{board.stem}",
            board.title,
            board.description,
            board.panels(t),
            t.runbook_base_url,
        )
        for board in BOARDS
    }
