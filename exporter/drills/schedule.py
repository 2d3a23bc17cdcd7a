"""Run a set's drills inside the exporter: on schedule, on one thread, never in a scrape.

The backups collector asks `Scheduler.families()` on each refresh, which returns at once; a due
drill starts on the process-wide drill thread (one drill at a time) and a later refresh exports
its recorded result. Results the command line records in the state dir are picked up too.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from exporter.drills.config import RestoreConfig
from exporter.drills.metrics import state_families
from exporter.drills.model import DrillResult
from exporter.drills.runner import Drill, Target
from exporter.drills.state import Busy, DrillState, DrillStore
from exporter.metrics import MetricSet

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
STOP_WAIT = 30.0  # seconds close() waits for a cancelled drill to drop its scratch


def _executor() -> ThreadPoolExecutor:
    global _pool  # one thread per process: drills run one at a time
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(1, thread_name_prefix="restore-drill")
        return _pool


def due(now: float, state: DrillState, every: float) -> bool:
    """Return True when a drill should start: never run, or the last one ended `every` ago."""
    return state.last is None or now - state.last.finished >= every


class Scheduler:
    """One backup set's drills in the exporter."""

    def __init__(
        self,
        name: str,
        config: RestoreConfig,
        state_dir: str | None,
        live_databases: frozenset[str],
        log: Any,
        clock: Callable[[], float],
    ) -> None:
        self._log = log
        self._clock = clock
        self._config = config
        self._store = DrillStore(state_dir, name, clock())
        self._drill = Drill(name, config, self._store, live_databases, clock)
        self._state = self._store.load()
        self._stamp = self._store.stamp()
        self._task: asyncio.Future[None] | None = None
        self._cancel = threading.Event()
        self._recovered = False

    @property
    def running(self) -> bool:
        """Return True while a drill (or the start-up cleanup) runs."""
        return self._task is not None and not self._task.done()

    def families(self, ms: MetricSet, target: Target | None) -> None:
        """Add the drill series; start a due drill when its target is ready (None: not yet)."""
        if self._store.stamp() != self._stamp:
            self._stamp = self._store.stamp()
            self._state = self._store.load()
        if not self.running:
            if not self._recovered:
                self._start(self._recover)
            elif target is not None and due(self._clock(), self._state, self._config.every):
                self._start(lambda: self._run(target))
        state_families(ms, self._state, self.running)

    def _start(self, job: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(_executor(), job)
        task.add_done_callback(self._finished)
        self._task = task

    def _recover(self) -> None:
        try:
            removed = self._drill.recover()
        except Busy:
            return  # the previous instance's drill is still stopping: retry next refresh
        except Exception as exc:  # a server that is down: the next drill's prepare() retries
            self._log.error("backup_drill_cleanup_failed", reason=f"{type(exc).__name__}: {exc}")
            removed = None
        self._recovered = True
        if removed:
            self._log.warning("backup_drill_scratch_removed", scratch=removed)
        self._state = self._store.load()

    def _run(self, target: Target) -> None:
        if self._cancel.is_set():
            return  # queued behind another set's drill while this instance was closed
        self._log.info("backup_drill_started", path=target.path)
        try:
            result = self._drill.run(target, self._cancel)
        except Busy as exc:
            self._log.info("backup_drill_deferred", reason=str(exc))
            return
        self._state = self._store.load()
        self._logged(result)

    def _logged(self, result: DrillResult) -> None:
        fields = {
            "path": result.file,
            "seconds": round(result.duration, 3),
            "restored_bytes": result.restored_bytes,
        }
        if result.ok:
            self._log.info("backup_drill_passed", **fields)
        else:
            self._log.error("backup_drill_failed", reason=result.reason, kept=result.kept, **fields)

    def _finished(self, task: asyncio.Future[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._recovered = True  # do not loop on a broken server; the next refresh retries
            self._log.error("backup_drill_error", exc_info=task.exception())

    async def close(self) -> None:
        """Kill a running drill (its scratch is dropped) and wait a bounded time for it."""
        self._cancel.set()
        if self._task is not None and not self._task.done():
            await asyncio.wait({self._task}, timeout=STOP_WAIT)
