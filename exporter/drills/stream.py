"""Stream a backup file, decompressed on the fly, into a restore client at low priority.

The client runs in its own process group under `nice`/`ionice`, so a timeout or a cancel kills
it with every child it started. Blocking: run it in the drill thread.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

from exporter.collectors.backups.streams import GZIP_MAGIC, ZSTD_MAGIC, Corrupt, gunzip, unzstd

CHUNK = 1 << 20
STDERR_LINES = 20
_POLL = 0.2


class Forbidden(Exception):
    """The dump holds a statement a drill must not run (it would leave the scratch target)."""


@dataclass(frozen=True)
class PipeOutcome:
    """How the client ended: exit code, its last stderr lines, bytes fed, why it was stopped."""

    returncode: int
    stderr: tuple[str, ...]
    fed: int
    stopped: str = ""  # "timeout", "cancelled", or a stream problem (corrupt, forbidden)

    def client_error(self) -> str:
        """Return the client's own error line (the last line naming an error, else the last)."""
        for line in reversed(self.stderr):
            if "error" in line.lower() or "fatal" in line.lower():
                return line
        return self.stderr[-1] if self.stderr else ""


def raw_chunks(path: str) -> Iterator[bytes]:
    """Yield a file's bytes in fixed-size chunks."""
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def decompressed(path: str) -> Iterator[bytes]:
    """Yield the file's content, gunzipped or unzstd'ed when its first bytes say so."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    raw = raw_chunks(path)
    if head.startswith(GZIP_MAGIC):
        return gunzip(raw)
    if head.startswith(ZSTD_MAGIC):
        return unzstd(raw)
    return raw


def peek(stream: Iterator[bytes], size: int) -> tuple[bytes, Iterator[bytes]]:
    """Return the first `size` bytes and an iterator that still yields everything."""
    head, held = b"", []
    for chunk in stream:
        held.append(chunk)
        head += chunk
        if len(head) >= size:
            break

    def replay() -> Iterator[bytes]:
        yield from held
        yield from stream

    return head[:size], replay()


def guarded(stream: Iterable[bytes], forbidden: Sequence[bytes], why: str) -> Iterator[bytes]:
    """Yield chunks unchanged; raise Forbidden when a line starts with a forbidden statement."""
    keep = max(len(f) for f in forbidden) + 1
    tail = b"\n"
    for chunk in stream:
        # Search the chunk itself, and only a small seam across the previous chunk's end: no
        # copy of the whole chunk while the exporter's other threads wait for the GIL.
        seam = tail + chunk[:keep]
        for statement in forbidden:
            needle = b"\n" + statement
            if chunk.find(needle) >= 0 or seam.find(needle) >= 0:
                raise Forbidden(f"{why}: the dump holds {statement.decode().strip()!r}")
        tail = (tail + chunk)[-keep:] if len(chunk) < keep else chunk[-keep:]
        yield chunk


def low_priority(argv: Sequence[str]) -> list[str]:
    """Prefix `nice` and `ionice -c3` (idle I/O class) where the tools exist."""
    prefix = []
    if shutil.which("nice"):
        prefix += ["nice", "-n", "10"]
    if shutil.which("ionice"):
        prefix += ["ionice", "-c", "3"]
    return [*prefix, *argv]


class _Stopper:
    """Kill the client's process group at the deadline or on cancel."""

    def __init__(self, proc: subprocess.Popen[bytes], deadline: float, cancel: threading.Event):
        self.reason = ""
        self._proc, self._deadline, self._cancel = proc, deadline, cancel
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="drill-stopper", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(_POLL):
            if self._cancel.is_set():
                self.kill("cancelled")
            elif time.monotonic() >= self._deadline:
                self.kill("timeout")
            if self.reason:
                return

    def kill(self, reason: str) -> None:
        """Kill the whole process group once; remember why."""
        if self.reason:
            return
        self.reason = reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop watching."""
        self._done.set()
        self._thread.join()


def pipe_into(
    argv: Sequence[str],
    env: dict[str, str],
    chunks: Iterable[bytes],
    deadline: float,
    cancel: threading.Event,
    low: bool = True,
) -> PipeOutcome:
    """Feed `chunks` to the client's stdin; kill its group on timeout, cancel or bad input."""
    proc = subprocess.Popen(
        low_priority(argv) if low else list(argv),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
        start_new_session=True,
    )
    assert proc.stdin is not None
    assert proc.stderr is not None
    lines: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
    reader = threading.Thread(target=_read_lines, args=(proc.stderr, lines), daemon=True)
    reader.start()
    stopper = _Stopper(proc, deadline, cancel)
    fed, problem = 0, ""
    try:
        fed, problem = _feed(proc.stdin, chunks, stopper)
    finally:
        if problem:
            stopper.kill(problem)
        _close(proc.stdin)
        proc.wait()
        stopper.stop()
        reader.join()
        proc.stderr.close()
    return PipeOutcome(proc.returncode, tuple(lines), fed, stopper.reason)


def _feed(stdin: IO[bytes], chunks: Iterable[bytes], stopper: _Stopper) -> tuple[int, str]:
    fed = 0
    write = stdin.write
    try:
        for chunk in chunks:
            if stopper.reason:
                break
            write(chunk)
            fed += len(chunk)
    except BrokenPipeError:
        pass  # the client ended early: its exit code and stderr say why
    except (Corrupt, Forbidden) as exc:
        return fed, str(exc)
    except OSError as exc:
        return fed, f"cannot read the backup: {exc.strerror}"
    return fed, ""


def _close(stdin: IO[bytes]) -> None:
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


def _read_lines(stream: IO[bytes], lines: collections.deque[str]) -> None:
    for raw in stream:
        line = raw.decode("utf-8", "replace").strip()
        if line:
            lines.append(line)
