"""Run one drill, start to end: refuse what is unsafe, restore, check, drop, record.

Blocking (the exporter runs it on its single drill thread; the CLI in its main thread).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

from exporter.drills.checks import first_failure
from exporter.drills.config import RestoreConfig
from exporter.drills.engine import Engine, Inspection, make_engine
from exporter.drills.model import Check, DrillResult, Refused, failed
from exporter.drills.state import DrillState, DrillStore
from exporter.drills.stream import PipeOutcome, decompressed

Progress = Callable[[str], None]
_REPORT_EVERY = 256 << 20  # bytes between progress lines


@dataclass(frozen=True)
class Target:
    """The file to restore and what its integrity check said (None: not checked)."""

    path: str | None
    verified: bool | None = None
    verify_detail: str = ""


@dataclass
class Drill:
    """One set's drill: its config, the names of live databases, where results are kept."""

    name: str
    config: RestoreConfig
    store: DrillStore
    live_databases: frozenset[str] = frozenset()
    clock: Callable[[], float] = time.time
    progress: Progress = lambda _: None

    def run(self, target: Target, cancel: threading.Event) -> DrillResult:
        """Run the drill under the drill lock and record its result (raise Busy if locked)."""
        with self.store.lock():
            state = self.store.load()
            result = self._attempt(target, state, cancel)
            self._record(state, result)
            return result

    def recover(self) -> str | None:
        """Remove scratch left by a drill that was running when its process died.

        Returns the scratch removed, if any. A scratch kept on purpose after a failure stays.
        """
        with self.store.lock():
            state = self.store.load()
            engine = make_engine(self.config)
            kept = state.last.kept if state.last else None
            removed = None
            if kept != engine.describe() and engine.drop():
                removed = engine.describe()
            if state.running is not None:
                now = self.clock()
                reason = "interrupted: the process running the drill stopped before it ended"
                if removed:
                    reason += f"; scratch {removed} removed"
                file = str(state.running.get("file", ""))
                started = float(state.running.get("started", now))
                self._record(state, failed(file, started, now, reason))
            return removed

    def _attempt(self, target: Target, state: DrillState, cancel: threading.Event) -> DrillResult:
        now = self.clock()
        if target.path is None:
            return failed("", now, now, "no settled backup file in the set to restore")
        if target.verified is False:
            reason = (
                f"newest file {os.path.basename(target.path)} failed its integrity check"
                f" ({target.verify_detail}): reported, not restored"
            )
            return failed(target.path, now, now, reason)
        scratch = self.config.scratch_name()
        if self.config.engine != "tarball" and scratch in self.live_databases:
            reason = (
                f"refused: scratch database {scratch} is named as a live database in the"
                " config; a drill restores only into a database of its own"
            )
            return failed(target.path, now, now, reason)
        state.running = {"file": target.path, "started": now, "pid": os.getpid()}
        self.store.save(state)
        return self._restore(make_engine(self.config), target.path, cancel)

    def _restore(self, engine: Engine, path: str, cancel: threading.Event) -> DrillResult:
        started, t0 = self.clock(), time.monotonic()
        try:
            self.progress(f"creating scratch {engine.describe()}")
            engine.prepare()
        except Refused as exc:
            return failed(path, started, self.clock(), f"refused: {exc}")
        except Exception as exc:  # a server error is the drill's result
            return failed(path, started, self.clock(), f"cannot create scratch: {exc}")
        result = self._fill_and_check(engine, path, cancel, started, t0)
        keep = not result.ok and self.config.keep_on_failure and "killed" not in result.reason
        if keep:
            return replace(result, kept=engine.describe())
        try:
            engine.drop()
            self.progress(f"scratch {engine.describe()} removed")
        except Exception as exc:  # recover() retries at the next start
            result = replace(
                result, reason=f"{result.reason}; cannot drop scratch: {exc}".lstrip("; ")
            )
        return result

    def _fill_and_check(
        self, engine: Engine, path: str, cancel: threading.Event, started: float, t0: float
    ) -> DrillResult:
        self.progress(f"restoring {path}")
        deadline = t0 + self.config.timeout
        try:
            outcome = engine.restore(self._counted(decompressed(path)), deadline, cancel)
        except OSError as exc:
            return failed(path, started, self.clock(), f"cannot start the restore: {exc}")
        problem = restore_problem(outcome, self.config.timeout)
        if problem:
            return replace(failed(path, started, self.clock(), problem), restored_bytes=outcome.fed)
        self.progress(f"restored {outcome.fed} bytes; checking")
        try:
            found = engine.inspect(self._previous())
        except Exception as exc:  # a failed check is the drill's result
            found = Inspection(checks=[Check("inspect", False, f"checks failed: {exc}")])
        checks = [Check("restore", True, f"{outcome.fed} bytes restored"), *found.checks]
        ok = all(c.ok for c in checks)
        finished = self.clock()
        return DrillResult(
            ok=ok,
            reason=first_failure(checks),
            file=path,
            started=started,
            finished=finished,
            duration=time.monotonic() - t0,
            restored_bytes=outcome.fed,
            rows=found.rows,
            checks=tuple(checks),
            files=found.files,
            size=found.size,
        )

    def _previous(self) -> tuple[int, int] | None:
        return self.store.load().previous

    def _counted(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        fed, next_report = 0, _REPORT_EVERY
        for chunk in chunks:
            fed += len(chunk)
            if fed >= next_report:
                self.progress(f"{fed >> 20} MiB restored")
                next_report += _REPORT_EVERY
            yield chunk

    def _record(self, state: DrillState, result: DrillResult) -> None:
        state.running = None
        state.last = result
        if result.ok:
            state.last_success = result.finished
            if result.files is not None and result.size is not None:
                state.previous = (result.files, result.size)
        self.store.save(state)


def restore_problem(outcome: PipeOutcome, timeout: float) -> str:
    """Return why a restore failed ('' when it succeeded)."""
    if outcome.stopped == "timeout":
        return f"timed out after {timeout:g}s: restore killed, scratch removed"
    if outcome.stopped == "cancelled":
        return "cancelled: the exporter is stopping; restore killed"
    if outcome.stopped:
        error = outcome.client_error()
        return f"{outcome.stopped}; restore killed" + (f" ({error})" if error else "")
    if outcome.returncode != 0:
        error = outcome.client_error() or "no error message"
        return f"restore client exited with status {outcome.returncode}: {error}"
    return ""
