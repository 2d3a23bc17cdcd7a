"""Read-only SQLite connections for the pages, beside the store's single writer thread.

In WAL mode readers never block the writer: a page view reading a 10 000-alert incident runs
in its own thread (sqlite3 releases the GIL while it steps) instead of queueing in front of
webhook intake on the writer thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from receiver.store import StoreUnavailable
from receiver.store.dialect import SQLITE
from receiver.store.sqlite import dict_row


class SqliteReader:
    """A few read-only connections used from a small thread pool."""

    def __init__(self, path: Path, workers: int = 2) -> None:
        self.uri = f"{path.resolve().as_uri()}?mode=ro"
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="page-reads")
        self._idle: list[sqlite3.Connection] = []
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _take(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        conn = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
        conn.row_factory = dict_row
        conn.execute("PRAGMA busy_timeout=5000")
        with self._lock:
            self._opened.append(conn)
        return conn

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        conn = self._take()
        try:
            return list(conn.execute(sql, params).fetchall())
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(f"sqlite: {exc}") from exc
        finally:
            with self._lock:
                self._idle.append(conn)

    async def query(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        """Return the rows of one query (written like every storage statement: `?`)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._query, SQLITE.render(sql), params)

    def close(self) -> None:
        """Finish running queries and close every connection."""
        self._pool.shutdown(wait=True)
        for conn in self._opened:
            conn.close()
