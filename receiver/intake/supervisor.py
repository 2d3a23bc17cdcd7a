"""The receiver's side of the applier: start it, ring it, read its reports, restart it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from maintwatch import loop
from receiver.intake.applier import Setup
from receiver.intake.inbox import Inbox
from receiver.intake.protocol import Tally
from receiver.intake.table import TableInbox

RESTART_FIRST, RESTART_MAX = 0.2, 10.0
STEADY = 30.0  # an applier that ran this long restarts without the accumulated backoff
STOP_WAIT = 5.0
REPORT_LIMIT = 1 << 16  # one line of sums per batch


class Supervisor:
    """Keeps one applier process running; `applied` is the mark it last reported."""

    def __init__(self, setup: Setup, on_applied: Callable[[Tally], None], log: Any) -> None:
        self.setup, self.on_applied, self.log = setup, on_applied, log
        self.applied = 0
        self.up = False
        self.restarts = 0
        self._process: asyncio.subprocess.Process | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        # The doorbell: its own pipe, so the inbox's writer thread rings the moment an append
        # is committed, before the event loop has even sent the 200. Every applier this
        # supervisor starts inherits the read end; the receiver keeps it open too, so a ring
        # never fails, and bells rung while no applier runs wait for the next one.
        self._bell_out, self._bell_in = os.pipe()
        os.set_blocking(self._bell_in, False)

    def ring(self) -> None:
        """Tell the applier rows were appended (safe from any thread; never fails an append:
        a lost bell costs the applier at most its idle check)."""
        bell = self._bell_in
        if bell < 0:
            return  # closed: the receiver is stopping
        with contextlib.suppress(OSError):  # BlockingIOError: a full pipe has bells enough
            os.write(bell, b"\n")

    async def caught_up(self, seq: int, within: float) -> bool:
        """Wait until the applier applied `seq` (bounded); True if it did."""
        if self.applied >= seq:
            return True
        future = asyncio.get_running_loop().create_future()
        waiter = (seq, future)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(within):
                await future
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def run(self) -> None:
        """Run the applier; restart it with backoff whenever it exits."""
        wait = RESTART_FIRST
        while True:
            started = time.monotonic()
            try:
                code: int | str = await self._run_once()
            except OSError as exc:  # could not start one (no memory, no processes left)
                code = str(exc)
            self.up = False
            if time.monotonic() - started > STEADY:
                wait = RESTART_FIRST
            self.restarts += 1
            self.log.error("intake_applier_exited", returncode=code, restart_in=wait)
            await asyncio.sleep(wait)
            wait = min(RESTART_MAX, wait * 2)

    async def _run_once(self) -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "receiver.intake.applier",
            loop.running(),  # the applier runs on the receiver's loop
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=REPORT_LIMIT,
            pass_fds=(self._bell_out,),
        )
        self._process = process
        assert process.stdin is not None
        assert process.stdout is not None
        try:
            process.stdin.write(dataclasses.replace(self.setup, bell=self._bell_out).encode())
            self.ring()  # rows may have been appended while no applier ran
            while line := await process.stdout.readline():
                self._report(line)
        except ConnectionError:
            pass  # it died while being set up: the exit code says how
        except (ValueError, KeyError, TypeError) as exc:  # not our protocol: start afresh
            self.log.error("intake_applier_report_unreadable", error=str(exc))
            process.kill()
        # Not in a `finally`: once cancelled (shutdown), `stop` still needs the process.
        self._process = None
        return await process.wait()

    def _report(self, line: bytes) -> None:
        tally = Tally.decode(line)
        self.on_applied(tally)
        self.applied = tally.mark
        self.up = True
        for seq, future in self._waiters:
            if seq <= tally.mark and not future.done():
                future.set_result(None)

    async def stop(self) -> None:
        """End the applier: stdin's end lets it finish its batch, then it is killed."""
        try:
            await self._stop_process()
        finally:
            self.close()

    def close(self) -> None:
        """Close the doorbell (after `stop`, or when no applier was ever started)."""
        fds, self._bell_out, self._bell_in = (self._bell_out, self._bell_in), -1, -1
        for fd in fds:
            if fd >= 0:
                os.close(fd)

    async def _stop_process(self) -> None:
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(STOP_WAIT):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


class Intake:
    """The inbox and the applier that empties it."""

    def __init__(self, inbox: Inbox | TableInbox, supervisor: Supervisor) -> None:
        self.inbox, self.supervisor = inbox, supervisor

    async def caught_up(self, within: float) -> bool:
        """Wait until every webhook this replica accepted so far is applied (bounded)."""
        seq = self.inbox.last_seq
        if isinstance(self.inbox, TableInbox):
            return await self.inbox.applied(seq, within)
        return await self.supervisor.caught_up(seq, within)
