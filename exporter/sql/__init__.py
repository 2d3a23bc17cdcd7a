"""SQL access for the databases collector: drivers behind one small async interface."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

from exporter.sql.base import (
    ConnectFailed,
    ConnectionLost,
    Dialect,
    Driver,
    Row,
    SqlError,
    StatementFailed,
    Target,
    check_identifier,
)

_SCHEMES: dict[Dialect, tuple[str, ...]] = {
    "postgres": ("postgresql", "postgres"),
    "mysql": ("mysql", "mariadb"),
}
_DEFAULT_PORTS: dict[Dialect, int] = {"postgres": 5432, "mysql": 3306}


def parse_dsn(dialect: Dialect, dsn: str) -> tuple[str, int, str, str, str | None, dict[str, str]]:
    """Split `scheme://user[:password]@host[:port]/database[?k=v]`; raise ValueError if bad.

    Returns (host, port, user, database, password, params). Messages never echo the URL,
    which may hold a password.
    """
    url = urlsplit(dsn)
    if url.scheme not in _SCHEMES[dialect]:
        wanted = " or ".join(f"{s}://" for s in _SCHEMES[dialect])
        raise ValueError(f"driver {dialect} needs a URL starting with {wanted}")
    try:
        port = url.port or _DEFAULT_PORTS[dialect]
    except ValueError:
        raise ValueError("the URL's port is not a number from 1 to 65535") from None
    database = unquote(url.path.lstrip("/"))
    if not url.hostname or not url.username or not database or "/" in database:
        raise ValueError("the URL must name a user, a host and one database: scheme://user@host/db")
    params = dict(parse_qsl(url.query, keep_blank_values=True))
    if dialect == "mysql" and params:
        raise ValueError("mysql URLs take no ?parameters")
    password = unquote(url.password) if url.password is not None else None
    return url.hostname, port, unquote(url.username), database, password, params


def open_driver(target: Target, dialect: Dialect) -> Driver:
    """Return a driver for `dialect` (no connection is opened until the first fetch)."""
    if dialect == "postgres":
        from exporter.sql.postgres import PostgresDriver

        return PostgresDriver(target)
    from exporter.sql.mysql import MysqlDriver

    return MysqlDriver(target)


__all__ = [
    "ConnectFailed",
    "ConnectionLost",
    "Dialect",
    "Driver",
    "Row",
    "SqlError",
    "StatementFailed",
    "Target",
    "check_identifier",
    "open_driver",
    "parse_dsn",
]
