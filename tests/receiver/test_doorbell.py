"""The applier's doorbell: rung by the thread that commits an append, heard as one wake-up."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from maintwatch import logs
from receiver.config import SqliteStore
from receiver.intake.applier import Setup, hear
from receiver.intake.inbox import Inbox
from receiver.intake.supervisor import Supervisor
from receiver.store import IntakeRules


async def test_an_append_rings_from_the_thread_that_committed_it(tmp_path: Path) -> None:
    rung: list[str] = []
    box = Inbox(tmp_path / "inbox.db", lambda: rung.append(threading.current_thread().name))
    await box.open()
    try:
        seqs = await asyncio.gather(*(box.append(1.0, b"{}") for _ in range(5)))
    finally:
        await box.close()
    assert sorted(seqs) == [1, 2, 3, 4, 5]
    # Before the event loop learns of the commit (and sends any 200), and once per commit.
    assert set(rung) == {"inbox-writer"}
    assert len(rung) <= 5


async def test_many_bells_wake_the_applier_once() -> None:
    out, into = os.pipe()
    os.set_blocking(out, False)
    os.set_blocking(into, False)
    try:
        for _ in range(70_000):  # more than a pipe holds: the ringer never blocks on it
            try:
                os.write(into, b"\n")
            except BlockingIOError:
                break
        rung = asyncio.Event()
        hear(out, rung)
        assert rung.is_set()
        with_nothing_left = asyncio.Event()
        hear(out, with_nothing_left)  # a spurious wake-up reads nothing and still wakes
        assert with_nothing_left.is_set()
        assert not _readable(out)
    finally:
        os.close(out)
        os.close(into)


def test_ringing_never_fails_without_an_applier_or_after_close(tmp_path: Path) -> None:
    setup = Setup(SqliteStore(path=tmp_path / "r.db"), IntakeRules(()), None, None, logs.settings())
    supervisor = Supervisor(setup, lambda tally: None, None)
    for _ in range(70_000):  # no applier reads: the pipe fills, bells are dropped, none fails
        supervisor.ring()
    supervisor.close()
    supervisor.close()
    supervisor.ring()  # a last append committed while the receiver stops


def _readable(fd: int) -> bool:
    try:
        return bool(os.read(fd, 1))
    except BlockingIOError:
        return False
