"""A set's drill record in the state dir, so results survive restarts and CLI runs show up.

`<state_dir>/drills/<set>.json` holds the last result, the last success, when drills were first
scheduled, the previous good tarball's size, and a `running` note while a drill runs (a note
found at start-up with no drill holding the lock means the exporter stopped mid-drill).
One lock file serialises drills across the exporter and the command line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.drills.model import DrillResult

_process_lock = threading.Lock()  # one drill at a time per exporter


class Busy(Exception):
    """Another drill is running (in this process or another one sharing the state dir)."""


@dataclass
class DrillState:
    """What is remembered about one set's drills."""

    since: float
    last: DrillResult | None = None
    last_success: float | None = None
    previous: tuple[int, int] | None = None  # tarballs: (files, bytes) of the last good drill
    running: dict[str, Any] | None = field(default=None)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "since": self.since,
            "last": self.last.to_json() if self.last else None,
            "last_success": self.last_success,
            "previous": list(self.previous) if self.previous else None,
            "running": self.running,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DrillState:
        """Rebuild a state written by `to_json`."""
        last = DrillResult.from_json(data["last"]) if data.get("last") else None
        previous = tuple(data["previous"]) if data.get("previous") else None
        return cls(
            since=float(data["since"]),
            last=last,
            last_success=data.get("last_success"),
            previous=(int(previous[0]), int(previous[1])) if previous else None,
            running=data.get("running"),
        )


class DrillStore:
    """Load and save one set's DrillState (in memory only without a state dir)."""

    def __init__(self, state_dir: str | None, name: str, now: float) -> None:
        self._dir = Path(state_dir) / "drills" if state_dir else None
        self._path = self._dir / f"{name}.json" if self._dir else None
        self._memory = DrillState(since=now)
        self._now = now

    @property
    def path(self) -> Path | None:
        """Return the state file, if persisted."""
        return self._path

    def load(self) -> DrillState:
        """Return the saved state (a new one, dated now, when there is none or it is unreadable)."""
        if self._path is None:
            return self._memory
        try:
            return DrillState.from_json(json.loads(self._path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            state = DrillState(since=self._now)
            self.save(state)
            return state
        except (OSError, ValueError, KeyError, TypeError):
            return DrillState(since=self._now)

    def save(self, state: DrillState) -> None:
        """Write the state atomically."""
        if self._path is None or self._dir is None:
            self._memory = state
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_json(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self._path)

    def stamp(self) -> int:
        """Return the state file's mtime (ns), 0 when absent: to notice writes by the CLI."""
        if self._path is None:
            return 0
        try:
            return os.stat(self._path).st_mtime_ns
        except OSError:
            return 0

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the drill lock or raise Busy at once."""
        if not _process_lock.acquire(blocking=False):
            raise Busy("another drill is running in this process")
        try:
            if self._dir is None:
                yield
                return
            self._dir.mkdir(parents=True, exist_ok=True)
            with open(self._dir / ".lock", "a+b") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise Busy(f"another drill holds {self._dir / '.lock'}") from None
                yield
        finally:
            _process_lock.release()
