"""How one SQL text becomes SQLite's or PostgreSQL's: placeholders, locks and a few functions.

Every statement is written once with `?` (positional) or `:name` (named) placeholders, which
SQLite takes as they are; PostgreSQL's driver wants `%s` / `%(name)s`. A statement may also
hold a few `{token}`s for what the two databases spell differently. Rendering happens once per
statement text and dialect (cached), not on every execution.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_SKIP_LOCKED_OF = re.compile(r"\{skip_locked of (\w+)\}")
_LOCK_OF = re.compile(r"\{lock of (\w+)\}")
# A new row's id: the one handed out ahead (`:id`) or, when that is NULL, the next one.
_NEXT_ID_OF = re.compile(r"\{next_id of (\w+)\}")


@dataclass(frozen=True)
class Dialect:
    """The spelling of one database; `row_locks`: it has row locks (several writers).

    `sequences`: new ids come from sequences every writer shares, and can be taken before
    the rows that get them are inserted. Without (SQLite), a table's next id is the one after
    its highest, which the single writer may take ahead too. `json_rows`: a statement writes
    many rows from one JSON array (see `store.gather`); without, it runs once per row.
    `lateral`: a subquery can run once per row before it (LATERAL), which forces a lookup of
    many keys to probe an index per key; without (SQLite), the planner probes it anyway.
    """

    name: str
    row_locks: bool
    sequences: bool = False
    json_rows: bool = False
    lateral: bool = False
    tokens: Mapping[str, str] = field(default_factory=dict)
    ddl: Mapping[str, str] = field(default_factory=dict)
    # Keyed by the text alone: a lookup on every execution hashes one string, no more.
    _rendered: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def render(self, sql: str) -> str:
        """Return `sql` in this dialect (cached per text)."""
        try:
            return self._rendered[sql]
        except KeyError:
            rendered = self._rendered[sql] = _render(self, sql)
            return rendered

    def schema(self, sql: str) -> str:
        """Return a migration's DDL in this dialect (column types, boolean defaults)."""
        for token, spelled in self.ddl.items():
            sql = sql.replace("{" + token + "}", spelled)
        return sql

    def ids(self, ids: Sequence[int] | Sequence[str]) -> Any:
        """Return the one parameter that `{any}` (a list of ids or keys) takes."""
        return list(ids) if self.row_locks else json.dumps(list(ids))

    def json_key(self, name: str) -> str:
        """Return the parameter `{common_label}` takes: the label to read from `common_labels`."""
        if self.row_locks:
            return name
        return '$."' + name.replace('"', '\\"') + '"'

    def __hash__(self) -> int:
        return hash(self.name)


def _render(dialect: Dialect, sql: str) -> str:
    locks = dialect.row_locks
    sql = _SKIP_LOCKED_OF.sub(lambda m: f" FOR UPDATE OF {m[1]} SKIP LOCKED" if locks else "", sql)
    sql = _LOCK_OF.sub(lambda m: f" FOR UPDATE OF {m[1]}" if locks else "", sql)
    seq = dialect.sequences  # SQLite gives a NULL INTEGER PRIMARY KEY the next rowid itself
    sql = _NEXT_ID_OF.sub(
        lambda m: f"COALESCE(:id, nextval('{m[1]}_id_seq'))" if seq else ":id", sql
    )
    for token, spelled in dialect.tokens.items():
        sql = sql.replace("{" + token + "}", spelled)
    if dialect.name == "postgres":
        sql = sql.replace("%", "%%")
        sql = _NAMED.sub(r"%(\1)s", sql).replace("?", "%s")
        return sql.replace("{binary %s}", "%b")
    return sql.replace("{binary ?}", "?")


SQLITE = Dialect(
    "sqlite",
    row_locks=False,
    # One writer thread owns the file (BEGIN IMMEDIATE): there is nothing to lock or skip.
    tokens={
        "lock": "",
        "skip_locked": "",
        "greatest": "MAX",
        "any": "IN (SELECT value FROM json_each(?))",
        "common_label": "json_extract(common_labels, ?)",
    },
    ddl={
        "id": "INTEGER PRIMARY KEY",
        "ref": "INTEGER",
        "time": "REAL",
        "bool": "INTEGER",
        "false": "0",
        "bytes": "BLOB",
    },
)
POSTGRES = Dialect(
    "postgres",
    row_locks=True,
    sequences=True,
    json_rows=True,
    lateral=True,
    tokens={
        "lock": " FOR UPDATE",
        "skip_locked": " FOR UPDATE SKIP LOCKED",
        "greatest": "GREATEST",
        "any": "= ANY(?)",
        "common_label": "(common_labels::jsonb ->> ?)",
    },
    ddl={
        "id": "BIGSERIAL PRIMARY KEY",
        "ref": "BIGINT",
        "time": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "false": "FALSE",
        "bytes": "BYTEA",
    },
)
