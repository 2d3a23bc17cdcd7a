"""Restore drills: prove that a backup set's newest file restores, what it holds, how fast.

A backup set's `restore:` section names an engine (one module each: `mariadb`, `postgres`,
`tarball`); `runner.Drill` runs one drill, `schedule.Scheduler` runs them inside the exporter,
`cli` on demand. Errors: `model.Refused` (unsafe scratch target), `state.Busy` (a drill runs).
"""

from __future__ import annotations

from exporter.drills.config import RestoreConfig
from exporter.drills.model import Check, DrillResult, Refused
from exporter.drills.runner import Drill, Target
from exporter.drills.state import Busy, DrillStore

__all__ = [
    "Busy",
    "Check",
    "Drill",
    "DrillResult",
    "DrillStore",
    "Refused",
    "RestoreConfig",
    "Target",
]
