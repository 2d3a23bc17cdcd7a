"""Bounded pools of daemon worker threads, one per collector kind, for blocking calls.

A blocking call can hang for good (an `open()` on a FIFO, `stat()` on a hung NFS mount, a
driver stuck in a read) and a Python thread cannot be killed. So each collector kind gets its
own small pool: what one kind leaves stuck cannot take the threads another kind needs, and
asyncio's shared default executor is never used for collector work. The threads are daemon
threads, so a stuck one never holds the process at exit (`ThreadPoolExecutor`'s threads are
joined at interpreter exit, which once kept a stopped exporter alive forever).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

THREADS_PER_KIND = 4  # blocking calls one collector kind may have in flight at once
SHUTDOWN_WAIT = 2.0  # seconds `shutdown(wait=True)` waits for busy threads before giving up

_Work = tuple[Future[Any], Callable[[], Any]]


class WorkerPool(Executor):
    """An executor of at most `size` daemon threads, started on demand and kept while idle."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)  # released by a thread each time it goes idle
        self._closed = False

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Queue `fn(*args, **kwargs)`; a thread is started when none is idle and there is room."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"worker pool {self.name} is shut down")
            self._queue.put((future, lambda: fn(*args, **kwargs)))
            if not self._idle.acquire(timeout=0) and len(self._threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, call = item
            if future.set_running_or_notify_cancel():  # False: cancelled while queued
                try:
                    future.set_result(call())
                except BaseException as exc:  # handed to the waiter, like ThreadPoolExecutor
                    future.set_exception(exc)
            del item, future, call  # drop references to the result while idle
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads; with `wait`, give busy ones `SHUTDOWN_WAIT` seconds, then leave."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._queue.put(None)
        if wait:
            deadline = time.monotonic() + SHUTDOWN_WAIT
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))


_pools: dict[str, WorkerPool] = {}
_pools_lock = threading.Lock()


def pool(name: str, size: int = THREADS_PER_KIND) -> WorkerPool:
    """Return the process-wide pool called `name` (a collector kind), creating it on first use."""
    with _pools_lock:
        found = _pools.get(name)
        if found is None:
            found = _pools[name] = WorkerPool(f"mw-{name}", size)
        return found


async def run_in(pool_: WorkerPool, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking call on `pool_`; cancelling the await abandons the call, not the thread."""
    future = pool_.submit(fn, *args, **kwargs)
    return await asyncio.wrap_future(future)


class OneAtATime:
    """Run one blocking call of an instance at a time, on its kind's pool.

    A call that outlives its refresh's timeout cannot be stopped; the next refresh waits on the
    same call instead of piling up another thread behind it, so a stuck instance holds one
    thread of its kind's budget, not all of them.
    """

    def __init__(self, kind: str) -> None:
        self._pool = pool(kind)
        self._running: asyncio.Future[Any] | None = None

    async def run(self, fn: Callable[[], T]) -> T:
        """Return `fn()` run in a worker thread, or the result of the same call still running."""
        if self._running is None or self._running.done():
            self._running = asyncio.wrap_future(self._pool.submit(fn))
            self._running.add_done_callback(_retrieve)
        result: T = await asyncio.shield(self._running)
        return result

    @property
    def idle(self) -> bool:
        """Return True when no call is running."""
        return self._running is None or self._running.done()

    async def drain(self, seconds: float) -> None:
        """Wait up to `seconds` for a call still running (before closing what it uses)."""
        if self._running is not None and not self._running.done():
            await asyncio.wait({self._running}, timeout=seconds)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A call whose refresh timed out may fail later with nobody awaiting it; the next refresh
    # reports the problem, so retrieving the exception here only silences asyncio's warning.
    if not future.cancelled():
        future.exception()


class DaemonDefaultExecutor(ThreadPoolExecutor):
    """asyncio's default executor (DNS lookups), on daemon threads.

    `loop.set_default_executor` accepts only a ThreadPoolExecutor, whose threads are joined at
    exit; this one starts none of its own and hands every call to a `WorkerPool`.
    """

    def __init__(self, size: int) -> None:
        super().__init__(max_workers=size)
        self._daemons = WorkerPool("mw-default", size)

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run the call on a daemon thread."""
        return self._daemons.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the daemon threads (waiting a bounded time when asked to wait)."""
        self._daemons.shutdown(wait)
        super().shutdown(wait=False)
