"""Group commit: intakes waiting behind each other share one transaction and one commit.

SQLite: the store's single writer thread has one job queue; intakes waiting in it share one
commit. PostgreSQL: `Batcher` does the same on the event loop.

Each intake caller gets its own result (or exception) only after the shared commit is durable,
so "persisted before 200" holds while one fsync serves many webhooks. The thread takes the
next batch itself as soon as a commit returns: unlike an executor driven from the event loop,
it never sits idle waiting for a busy loop to hand it the intakes that queued meanwhile.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
T = TypeVar("T")


@dataclass(frozen=True)
class _Job:
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass(frozen=True)
class _Call(_Job):
    func: Callable[..., Any]
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Submit(_Job):
    item: Any


@dataclass(frozen=True)
class _Stop(_Job):
    pass


class WriterStopped(RuntimeError):
    """The writer thread was asked to stop; no more jobs are taken."""


class WriterThread(Generic[Item, Result]):
    """Run calls one at a time on a dedicated thread; hand queued items to `commit` in batches."""

    def __init__(
        self,
        commit: Callable[[list[Item]], list[Result | Exception]],
        name: str,
        max_batch: int = 256,
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._stopping = False

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func(*args)` on the writer thread and return its result."""
        result: T = await self._put(lambda loop, future: _Call(loop, future, func, args))
        return result

    async def submit(self, item: Item) -> Result:
        """Queue an item and wait until the batch holding it is committed."""
        result: Result = await self._put(lambda loop, future: _Submit(loop, future, item))
        return result

    async def stop(self) -> None:
        """Finish the jobs queued so far, then end the thread."""
        if self._stopping:
            return
        stopped = self._enqueue(_Stop)
        self._stopping = True  # jobs queued after the stop job would never run: refuse them
        await stopped
        self._thread.join()  # the thread answered the stop job as its last act: no wait here

    async def _put(
        self, make: Callable[[asyncio.AbstractEventLoop, asyncio.Future[Any]], _Job]
    ) -> Any:
        if self._stopping:
            raise WriterStopped("writer thread stopped")
        return await self._enqueue(make)

    def _enqueue(
        self, make: Callable[[asyncio.AbstractEventLoop, asyncio.Future[Any]], _Job]
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put(make(loop, future))
        return future

    def _main(self) -> None:
        held: _Job | None = None
        while True:
            job = held if held is not None else self._queue.get()
            held = None
            if isinstance(job, _Stop):
                _post([(job, None)])
                return
            if isinstance(job, _Call):
                _post([(job, _outcome(job.func, *job.args))])
                continue
            assert isinstance(job, _Submit)
            batch, held = self._collect(job)
            outcome = _outcome(self._commit, [j.item for j in batch])
            if isinstance(outcome, _Failed):  # the whole batch failed (e.g. the disk)
                _post([(j, outcome) for j in batch])
            else:
                _post(
                    [
                        (j, _Failed(r) if isinstance(r, Exception) else r)
                        for j, r in zip(batch, outcome, strict=True)
                    ]
                )

    def _collect(self, first: _Submit) -> tuple[list[_Submit], _Job | None]:
        # Take every intake queued behind `first`; stop at any other job to keep the order.
        batch = [first]
        while len(batch) < self._max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return batch, None
            if not isinstance(job, _Submit):
                return batch, job
            batch.append(job)
        return batch, None


@dataclass(frozen=True)
class _Failed:
    error: Exception


def _outcome(func: Callable[..., Any], *args: Any) -> Any:
    try:
        return func(*args)
    except Exception as exc:  # handed to the caller's future, not swallowed
        return _Failed(exc)


def _post(results: list[tuple[_Job, Any]]) -> None:
    # One wake-up of the event loop per batch, not one per caller.
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Any]]] = {}
    for job, result in results:
        by_loop.setdefault(job.loop, []).append((job, result))
    for loop, settled in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, settled)
        except RuntimeError:
            # The loop is closed: its callers are gone and nobody can receive the result.
            if not loop.is_closed():
                raise


def _settle(results: list[tuple[_Job, Any]]) -> None:
    for job, result in results:
        if job.future.done():  # the caller went away (request cancelled)
            continue
        if isinstance(result, _Failed):
            job.future.set_exception(result.error)
        else:
            job.future.set_result(result)


class Batcher(Generic[Item, Result]):
    """Group commit on the event loop: intakes arriving while a batch commits form the next one.

    One batch is in flight at a time, so a replica's intakes keep their arrival order and share
    one transaction (one commit) under load, while a lone intake goes out at once.
    """

    def __init__(
        self,
        commit: Callable[[list[Item]], Awaitable[list[Result | Exception]]],
        max_batch: int = 256,
    ) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Queue an item and wait until the batch holding it is committed."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    results = await self._commit([item for item, _ in batch])
                except Exception as exc:  # the whole batch failed: each caller gets the error
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done():  # the caller went away (request cancelled)
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._draining = None
