"""Run backup integrity checks in background threads; cache results by (path, size, mtime).

A check of a large file can take minutes, longer than any refresh timeout, so it never runs
inside `refresh()`: the collector asks `Verifier.latest()` for what is known, which starts a
check when needed and returns at once; a later refresh picks the result up.

Checks share a few process-wide turns (half the CPUs), so many sets cannot saturate the
machine. A check holds a turn for a slice of work at a time and hands it on when another set
waits, so a huge or hostile file (1 TiB of zeros in 31 MB of zstd) slows the others down but
never starves them; and a check that used up its set's `verify_budget` of work stops with a
failed verdict.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from exporter.collectors.backups.scan import BackupFile
from exporter.collectors.backups.verify import Cancelled, OverBudget, Pace, Verdict
from exporter.workers import WorkerPool, pool

CheckFn = Callable[[str, Pace], Verdict | None]
Key = tuple[str, int, int]

VERIFY_THREADS = max(1, (os.cpu_count() or 2) // 2)  # checks working at once
MAX_CHECKS = 16  # checks in progress at once (each has a thread; most wait for a turn)
SLICE = 0.25  # seconds of work before a check lets a waiting one have its turn


class Turns:
    """Give `slots` turns to waiting checks in order of arrival (round-robin as they return)."""

    def __init__(self, slots: int) -> None:
        self._cond = threading.Condition()
        self._free = slots
        self._queue: deque[object] = deque()

    @property
    def waiting(self) -> bool:
        """Return True when a check waits for a turn."""
        return bool(self._queue)

    def acquire(self, who: object, cancel: threading.Event) -> None:
        """Wait for `who`'s turn; raise Cancelled when `cancel` is set meanwhile."""
        with self._cond:
            self._queue.append(who)
            try:
                while not (self._free and self._queue[0] is who):
                    if cancel.is_set():
                        raise Cancelled
                    self._cond.wait(0.5)
            except BaseException:
                self._queue.remove(who)
                self._cond.notify_all()
                raise
            self._queue.popleft()
            self._free -= 1
            self._cond.notify_all()

    def release(self) -> None:
        """Hand a turn back."""
        with self._cond:
            self._free += 1
            self._cond.notify_all()


TURNS = Turns(VERIFY_THREADS)


class ScheduledPace(Pace):
    """A check's pace in the worker: work only on a turn, yield it after a slice, keep a budget."""

    def __init__(self, cancel: threading.Event, turns: Turns, budget: float) -> None:
        super().__init__(cancel)
        self._turns = turns
        self.budget = budget
        self.used = 0.0  # seconds spent holding a turn (waiting for one does not count)
        self._since: float | None = None  # when the current turn (or its last check) began
        self._slice_start = 0.0

    def check(self) -> None:
        """Stop on cancel or over budget; take a turn, or hand it on after a slice."""
        super().check()
        now = time.monotonic()
        if self._since is None:
            self._turns.acquire(self, self.cancel)
            self._since = self._slice_start = time.monotonic()
            return
        self.used += now - self._since
        self._since = now
        if self.used > self.budget:
            raise OverBudget(
                f"stopped after its verify_budget of {self.budget:g}s of work "
                "(corrupt, hostile, or too big for the budget)"
            )
        if now - self._slice_start >= SLICE and self._turns.waiting:
            self.finish()
            self.check()

    def finish(self) -> None:
        """Hand the turn back, if held."""
        if self._since is not None:
            self.used += time.monotonic() - self._since
            self._since = None
            self._turns.release()


def _executor() -> WorkerPool:
    return pool("backup-verify", MAX_CHECKS)  # one per process, created on first use


@dataclass(frozen=True)
class VerifyResult:
    """A finished check of one version of one file."""

    key: Key
    ok: bool
    format: str
    detail: str
    checked_at: float


class _Changed(Exception):
    """The file changed or vanished while it was being checked; its result means nothing."""


@dataclass
class _Job:
    key: Key
    cancel: threading.Event


class Verifier:
    """Background integrity checks for one backup set, with a small result cache."""

    def __init__(
        self,
        check: CheckFn,
        log: Any,
        clock: Callable[[], float],
        *,
        budget: float,
        keep: int = 8,
    ):
        self._check = check
        self._budget = budget
        self._log = log
        self._clock = clock
        self._keep = keep
        self._results: OrderedDict[Key, VerifyResult | None] = OrderedDict()
        self._job: _Job | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # includes obsolete jobs still stopping
        self._shown: VerifyResult | None = None

    def latest(self, target: BackupFile | None) -> VerifyResult | None:
        """Return the result to export now; start checking `target` if it is not known yet.

        Until the target's check finishes, the previous file's result stays exported.
        """
        if target is None:
            return self._shown
        if target.key in self._results:
            self._shown = self._results[target.key]  # None: the format has nothing to check
        elif self._job is None or self._job.key != target.key:
            self._start(target)
        return self._shown

    @property
    def running(self) -> Key | None:
        """Return the key being checked, if any."""
        return self._job.key if self._job is not None else None

    def _start(self, target: BackupFile) -> None:
        if self._job is not None:
            self._job.cancel.set()  # obsolete: a newer file became the target
        cancel = threading.Event()
        task = asyncio.create_task(self._run(target, cancel), name=f"verify:{target.path}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._job = _Job(target.key, cancel)

    async def _run(self, target: BackupFile, cancel: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            verdict = await loop.run_in_executor(_executor(), self._checked, target, cancel)
        except (Cancelled, _Changed):
            return
        except Exception as exc:  # task boundary: a bug in a check must not kill the collector
            self._log.error("backup_verify_error", path=target.path, exc_info=exc)
            self._store(target.key, None)
            return
        finally:
            if self._job is not None and self._job.cancel is cancel:
                self._job = None
        self._record(target, verdict, time.perf_counter() - started)

    def _checked(self, target: BackupFile, cancel: threading.Event) -> Verdict | None:
        if cancel.is_set():
            raise Cancelled
        pace = ScheduledPace(cancel, TURNS, self._budget)
        try:
            verdict = self._check(target.path, pace)
            info = os.stat(target.path)
        except FileNotFoundError:
            raise _Changed from None
        finally:
            pace.finish()
        if (info.st_size, info.st_mtime_ns) != (target.size, target.mtime_ns):
            raise _Changed
        return verdict

    def _record(self, target: BackupFile, verdict: Verdict | None, seconds: float) -> None:
        if verdict is None:
            self._log.info("backup_verify_unsupported", path=target.path)
            self._store(target.key, None)
            return
        result = VerifyResult(target.key, verdict.ok, verdict.format, verdict.detail, self._clock())
        self._store(target.key, result)
        event = "backup_verified" if verdict.ok else "backup_verify_failed"
        log = self._log.info if verdict.ok else self._log.error
        log(
            event,
            path=target.path,
            format=verdict.format,
            detail=verdict.detail,
            seconds=round(seconds, 3),
        )

    def _store(self, key: Key, result: VerifyResult | None) -> None:
        self._results[key] = result
        while len(self._results) > self._keep:
            self._results.popitem(last=False)

    async def close(self) -> None:
        """Stop running checks (their threads end within one chunk) and wait for their tasks."""
        job, self._job = self._job, None
        if job is not None:
            job.cancel.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
