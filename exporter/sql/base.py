"""The small async interface every SQL driver implements, and its exception tree.

Exceptions:
    SqlError            — base; `str()` is a clear, password-free reason for the log line.
    ├── ConnectFailed   — no connection could be opened (refused, auth, timeout).
    ├── ConnectionLost  — an open connection broke; the driver has dropped it.
    └── StatementFailed — the server rejected or cancelled a statement; connection kept.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Row = tuple[Any, ...]
Dialect = Literal["postgres", "mysql"]

# A table name, optionally schema-qualified; validated at config time so it can be quoted safely.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$")

TAG = "/* maintwatch */ "
"""Leading comment on every statement the exporter sends, so statement stats can skip them."""


class SqlError(Exception):
    """A database operation failed; the message is the reason to log."""

    retryable = False


class ConnectFailed(SqlError):
    """The driver could not open a connection."""


class ConnectionLost(SqlError):
    """An open connection broke; the next call reconnects."""

    retryable = True


class StatementFailed(SqlError):
    """The server rejected or cancelled one statement; the connection is still usable."""


@dataclass(frozen=True)
class Target:
    """Where and how to connect: parsed from the config's URL plus the password file."""

    host: str
    port: int
    user: str
    database: str
    password: str | None = field(repr=False)  # never in logs or tracebacks
    connect_timeout: float
    statement_timeout: float
    application_name: str = "maintwatch"
    params: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        """Return `user@host:port/database` for messages (never the password)."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


class Driver(abc.ABC):
    """One lazily opened, read-only connection with session timeouts; reconnects on failure."""

    dialect: Dialect

    def __init__(self, target: Target) -> None:
        self.target = target

    @abc.abstractmethod
    async def fetch(self, template: str, params: Sequence[Any] = (), **tables: str) -> list[Row]:
        """Run one tagged statement and return its rows.

        `template` uses `%s` placeholders for `params` and `{name}` for the identifiers given
        as keyword arguments (validated against IDENTIFIER, quoted by the driver). A literal
        `%` must be written `%%`.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection if one is open."""


def check_identifier(name: str) -> str:
    """Return `name` if it is a safe (optionally schema-qualified) identifier, else raise."""
    if not IDENTIFIER.match(name):
        raise ValueError(
            f"invalid table name {name!r}: use letters, digits and _ (optionally schema.table)"
        )
    return name
