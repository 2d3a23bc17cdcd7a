"""Writes a batch gathers: each written once for the whole batch instead of once per payload.

A batch of new alert groups writes, per payload, a group row, an incident, its alerts and its
messages: on PostgreSQL each is a statement with its own client and server work, which for a
one-row insert is most of its cost. `Gathering` holds such writes back and, before anything
else runs in the transaction (a read, any other write) or when the batch ends, sends each
statement once with every row gathered: on PostgreSQL one statement taking the rows as one
JSON array (read into the table's row type); on SQLite an `executemany`. A statement holding a
single row runs in its one-row form.

Gathered statements run in the order each first appeared, so a row is inserted after the rows
it refers to, as long as every payload writes them in that order (a group, then its incident,
then the incident's alerts and messages). They write rows no other gathered statement touches,
and nothing a gathered statement's caller reads: a gathered `execute` reports one row changed
without asking the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

from receiver.store.dialect import Dialect
from receiver.store.tx import Params, Row, Tx


class Gatherable(str):
    """A statement's one-row text that a batch may gather; `many` writes many rows at once."""

    many: str

    def many_params(self, rows: Sequence[Params], dialect: Dialect) -> tuple[Any]:
        """Return the parameter `many` takes for these rows."""
        raise NotImplementedError


class Insert(Gatherable):
    """An INSERT of one row, and the same INSERT of many rows from a JSON array.

    `columns` as SQL lists them, in parameter order; `values` spells a column's one-row value
    when it is not its own parameter: `:name` (a named parameter of another name), a `{token}`
    (its own value in the array), or a literal SQL value, the same for every row (no
    parameter).
    """

    params: tuple[str, ...]  # the JSON keys, in parameter order
    named: bool

    def __new__(
        cls,
        table: str,
        columns: str,
        *,
        named: bool = False,
        values: Mapping[str, str] | None = None,
        tail: str = "",
    ) -> Insert:
        values = values or {}
        names = [c.strip() for c in columns.split(",")]
        one = []
        pick = []  # each column's value as the many-row SELECT spells it
        params: list[str] = []
        for column in names:
            spelled = values.get(column)
            if spelled is None or spelled.startswith("{"):
                params.append(column)
                one.append(spelled or (f":{column}" if named else "?"))
                pick.append(column)
            elif spelled.startswith(":"):
                params.append(spelled[1:])
                one.append(spelled)
                pick.append(spelled[1:])
            else:
                one.append(spelled)
                pick.append(spelled)
        # Built from the module's own constants, never from input.
        listed = ", ".join(names)
        one_row = f"INSERT INTO {table} ({listed}) VALUES ({', '.join(one)}) {tail}"  # noqa: S608
        self = super().__new__(cls, one_row.rstrip())
        self.params = tuple(dict.fromkeys(params))
        # The JSON keys a row needs are columns of the table's row type, whose types convert
        # them: a named parameter feeding another column (`:updated_at`) is one of its own.
        self.many = (
            f"INSERT INTO {table} ({listed}) SELECT {', '.join(pick)} "  # noqa: S608
            f"FROM json_populate_recordset(NULL::{table}, ?::json) {tail}"
        ).rstrip()
        self.named = named
        return self

    def many_params(self, rows: Sequence[Params], dialect: Dialect) -> tuple[Any]:
        """Return the rows as one JSON array of objects keyed by parameter name."""
        keys = self.params
        if self.named:
            named = cast(Sequence[Mapping[str, Any]], rows)
            return (json.dumps([{k: r[k] for k in keys} for r in named]),)
        return (json.dumps([dict(zip(keys, r, strict=True)) for r in rows]),)


class ById(Gatherable):
    """An UPDATE of one row by its id (`WHERE id = ?`, the only parameter), and of many."""

    def __new__(cls, sql: str) -> ById:
        assert sql.endswith("WHERE id = ?"), sql
        self = super().__new__(cls, sql)
        self.many = sql.removesuffix("= ?") + "{any}"
        return self

    def many_params(self, rows: Sequence[Params], dialect: Dialect) -> tuple[Any]:
        """Return the ids as `{any}` takes them."""
        return (dialect.ids([cast(Sequence[int], r)[0] for r in rows]),)


class Gathering:
    """A transaction that holds gatherable writes back until something else runs (see above)."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.dialect = tx.dialect
        self._held: dict[Gatherable, list[Params]] = {}

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Hold a gatherable write (one row changed); run anything else after the held ones."""
        if isinstance(sql, Gatherable):
            self._held.setdefault(sql, []).append(params)
            return 1
        await self.flush()
        return await self.tx.execute(sql, params)

    async def executemany(self, sql: str, params: Sequence[Params]) -> None:
        """Hold a gatherable write's rows; run anything else after the held ones."""
        if isinstance(sql, Gatherable):
            if params:
                self._held.setdefault(sql, []).extend(params)
            return
        await self.flush()
        await self.tx.executemany(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """Run a query after the held writes."""
        await self.flush()
        return await self.tx.fetchone(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """Run a query after the held writes."""
        await self.flush()
        return await self.tx.fetchall(sql, params)

    async def flush(self) -> None:
        """Write what is held: each statement once, in the order each first appeared."""
        held, self._held = self._held, {}
        for statement, rows in held.items():
            # One row: the one-row form, which PostgreSQL runs cheaper than reading an array.
            if self.dialect.json_rows and len(rows) > 1:
                await self.tx.execute(statement.many, statement.many_params(rows, self.dialect))
            else:
                await self.tx.executemany(statement, rows)
