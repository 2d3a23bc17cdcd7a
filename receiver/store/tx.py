"""The transaction every storage script runs in, whichever database is behind it.

Scripts are `async def` functions taking a `Tx` first. On PostgreSQL each call awaits the
server; SQLite's calls never suspend, so its writer thread drives a script to completion with
`run_sync` and never needs an event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from receiver.store.dialect import Dialect

Row = dict[str, Any]
Params = Sequence[Any] | dict[str, Any]
P = ParamSpec("P")
T = TypeVar("T")


class Tx(Protocol):
    """One open transaction; SQL takes `?` / `:name` placeholders and dialect tokens."""

    @property
    def dialect(self) -> Dialect:
        """The database's spelling of SQL."""
        ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run a statement; return the number of rows it changed."""
        ...

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query; return its first row, if any."""
        ...

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query; return every row."""
        ...

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        """Run a statement once per parameter set (nothing for an empty list)."""
        ...


Script = Callable[Concatenate[Tx, P], Coroutine[Any, Any, T]]


async def one(tx: Tx, sql: str, params: Params = ()) -> Row:
    """Run a query that must return a row."""
    found = await tx.fetchone(sql, params)
    assert found is not None, sql
    return found


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a script whose awaits never suspend (SQLite's) to completion on this thread."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("a storage script suspended on the SQLite writer thread")
