"""`maintwatch-exporter drill <set>`: run a set's drill now, print progress and the result.

Exit codes: 0 passed, 1 failed (checks, restore, or refused), 2 usage or config problem,
3 another drill is running.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from exporter.collectors.backups.config import BackupSetConfig
from exporter.collectors.backups.scan import ScanError, compile_glob, scan
from exporter.collectors.backups.verify import verify_file
from exporter.collectors.registry import load_config
from exporter.config import ExporterBase
from exporter.drills.model import DrillResult
from exporter.drills.runner import Drill, Target
from exporter.drills.state import Busy, DrillStore
from maintwatch.cli import print_problems
from maintwatch.configload import ConfigError


def live_databases(config: ExporterBase) -> frozenset[str]:
    """Return every database the config names as live: watched ones and drills' `live`."""
    names: set[str] = set()
    for instance in config.instances().get("databases", []):
        target = getattr(instance, "target", None)
        if target is not None:
            names.add(target().database)
    for backup in config.instances().get("backups", []):
        restore = getattr(backup, "restore", None)
        if restore is not None and restore.live_database() is not None:
            names.add(restore.live_database())
    return frozenset(names)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse `drill <set> [--config.file FILE]`."""
    parser = argparse.ArgumentParser(
        prog="maintwatch-exporter drill",
        description="Run the restore drill of one backup set now and record its result.",
    )
    parser.add_argument("set", help="name of a backup set with a `restore:` section")
    parser.add_argument("--config.file", dest="config_file", default="maintwatch-exporter.yml")
    return parser.parse_args(argv)


def main(argv: Sequence[str]) -> int:
    """Entry point of the `drill` subcommand."""
    args = parse_args(argv)
    try:
        config = load_config(args.config_file)
    except ConfigError as exc:
        print_problems(exc)
        return 2
    backup = _find_set(config, args.set)
    if backup is None or backup.restore is None:
        names = [b.name for b in _sets(config) if b.restore is not None]
        print(f"{args.set}: no backup set of that name has a `restore:` drill"
              f" (sets with drills: {', '.join(names) or 'none'})", file=sys.stderr)  # fmt: skip
        return 2
    state_dir = str(config.state_dir) if config.state_dir else None
    store = DrillStore(state_dir, backup.name, time.time())
    drill = Drill(backup.name, backup.restore, store, live_databases(config), progress=_say)
    try:
        target = _target(backup)
        result = drill.run(target, threading.Event())
    except Busy as exc:
        print(f"{backup.name}: {exc}; try again when it ends", file=sys.stderr)
        return 3
    except ScanError as exc:
        print(f"{backup.name}: {exc}", file=sys.stderr)
        return 1
    _report(result, store)
    return 0 if result.ok else 1


def _sets(config: ExporterBase) -> list[Any]:
    return list(config.instances().get("backups", []))


def _find_set(config: ExporterBase, name: str) -> BackupSetConfig | None:
    for backup in _sets(config):
        if backup.name == name and isinstance(backup, BackupSetConfig):
            return backup
    return None


def _target(backup: BackupSetConfig) -> Target:
    settled_before_ns = int((time.time() - backup.settle) * 1e9)
    glob = compile_glob(backup.effective_glob())
    newest = scan(str(backup.directory), glob, backup.name_clock(), settled_before_ns)
    file = newest.newest_settled
    if file is None:
        return Target(None)
    if backup.verify == "none":
        return Target(file.path)
    _say(f"checking the integrity of {file.path}")
    check = partial(verify_file, verify=backup.verify, pg_restore=backup.pg_restore)
    verdict = check(file.path, threading.Event())
    if verdict is None:
        return Target(file.path)
    return Target(file.path, verdict.ok, verdict.detail)


def _say(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def _report(result: DrillResult, store: DrillStore) -> None:
    for check in result.checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    verdict = "PASSED" if result.ok else "FAILED"
    print(f"drill {verdict} in {result.duration:.1f}s ({result.restored_bytes} bytes restored)")
    if not result.ok:
        print(f"reason: {result.reason}")
    if result.kept:
        print(f"scratch kept for inspection: {result.kept}")
    where = store.path or "memory only: set state_dir to keep results"
    print(f"recorded in {where}")
