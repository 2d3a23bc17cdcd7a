"""Which file a drill restores: the newest settled one, once its integrity check is known."""

from __future__ import annotations

from exporter.collectors.backups.scan import BackupFile
from exporter.collectors.backups.worker import Verifier, VerifyResult
from exporter.drills.runner import Target


def drill_target(
    newest: BackupFile | None, verifier: Verifier | None, result: VerifyResult | None
) -> Target | None:
    """Return the drill's target, or None while the newest file's check is still running."""
    if newest is None:
        return Target(None)
    if verifier is None:
        return Target(newest.path)
    if result is not None and result.key == newest.key:
        return Target(newest.path, result.ok, result.detail)
    if verifier.running is not None:
        return None  # a check is running: wait for its verdict before restoring
    return Target(newest.path)  # nothing to check for this format
