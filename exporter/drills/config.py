"""The `restore:` drill of a backup set: engine, scratch target, cadence, limits and checks."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from exporter.sql import parse_dsn
from exporter.sql.base import Dialect
from maintwatch.configload import PositiveDuration, SecretFromFile, StrictModel

Engine = Literal["mariadb", "mysql", "postgres", "tarball"]

# 000 § Regular Recovery Testing asks for quarterly drills at least; 004 § Backup Verification
# for monthly restoration tests. The default is the seeds' minimum; sites pick e.g. 7d.
DEFAULT_EVERY = 90 * 86400.0
DEFAULT_RTO = 3600.0  # 004 § Disaster Recovery Plan: "Database: 1 hour"
DEFAULT_TIMEOUT = 4 * 3600.0  # 004: "Complete system: 4 hours"; past that, a drill is stuck

_DIALECT: dict[str, Dialect] = {"mariadb": "mysql", "mysql": "mysql", "postgres": "postgres"}
_CLIENT: dict[str, str] = {"mariadb": "mariadb", "mysql": "mysql", "postgres": "psql"}


class DbEndpoint(StrictModel):
    """Where a database is: a URL naming user, host and database, and its password."""

    dsn: str = Field(min_length=1)
    password_file: SecretFromFile | None = None


class Endpoint:
    """A resolved connection: host, port, user, database, password (never printed)."""

    def __init__(self, dialect: Dialect, endpoint: DbEndpoint) -> None:
        host, port, user, database, password, _ = parse_dsn(dialect, endpoint.dsn)
        if endpoint.password_file is not None:
            password = endpoint.password_file.get_secret_value()
        self.host, self.port, self.user, self.database = host, port, user, database
        self.password = SecretStr(password or "")

    def describe(self) -> str:
        """Return `user@host:port/database` for messages."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


class RestoreConfig(StrictModel):
    """How to prove that the newest backup of a set restores (`backups[].restore`)."""

    engine: Engine
    every: PositiveDuration = DEFAULT_EVERY
    timeout: PositiveDuration = DEFAULT_TIMEOUT
    rto: PositiveDuration = DEFAULT_RTO
    keep_on_failure: bool = False
    low_priority: bool = True  # run the restore client under `nice -n 10` and `ionice -c 3`
    # Databases: the scratch database (created, restored into, dropped) and, optionally, the
    # live one whose row counts the restored ones are compared with.
    scratch: DbEndpoint | None = None
    live: DbEndpoint | None = None
    tolerance: float = Field(default=0.05, ge=0, le=1)
    tables: dict[str, int] = Field(default_factory=dict)
    client: str | None = Field(default=None, min_length=1)
    pg_restore: str = Field(default="pg_restore", min_length=1)
    # Tarballs: the scratch directory extracted into, and what must be inside.
    directory: Path | None = None
    paths: list[str] = Field(default_factory=list)
    size_tolerance: float = Field(default=0.2, ge=0)
    tar: str = Field(default="tar", min_length=1)

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: dict[str, int]) -> dict[str, int]:
        for table, rows in value.items():
            if not table or any(c in table for c in '`"\\\0'):
                raise ValueError(f"table name {table!r} may not hold quotes or backslashes")
            if rows < 0:
                raise ValueError(f"{table}: minimum row count must be zero or more")
        return value

    @field_validator("paths")
    @classmethod
    def _relative(cls, value: list[str]) -> list[str]:
        for path in value:
            if path.startswith("/") or ".." in Path(path).parts:
                raise ValueError(f"{path!r}: paths are relative to the archive root, without '..'")
        return value

    @model_validator(mode="after")
    def _engine_fields(self) -> RestoreConfig:
        if self.engine == "tarball":
            if self.directory is None:
                raise ValueError("engine tarball needs `directory` (the scratch directory)")
            if self.scratch or self.live or self.tables:
                raise ValueError("engine tarball takes `directory` and `paths`, not databases")
            return self
        if self.scratch is None:
            raise ValueError(f"engine {self.engine} needs `scratch` (the scratch database URL)")
        if self.directory is not None or self.paths:
            raise ValueError(f"engine {self.engine} restores into a database, not `directory`")
        dialect = _DIALECT[self.engine]
        for field in ("scratch", "live"):
            endpoint = getattr(self, field)
            if endpoint is None:
                continue
            try:
                parse_dsn(dialect, endpoint.dsn)
            except ValueError as exc:
                raise ValueError(f"{field}.dsn: {exc}") from None
        if self.live is not None and self.scratch_endpoint().database == self.live_database():
            raise ValueError(
                "scratch and live name the same database: a drill never restores over it"
            )
        return self

    @property
    def dialect(self) -> Dialect:
        """Return the SQL dialect of a database engine."""
        return _DIALECT[self.engine]

    def client_binary(self) -> str:
        """Return the SQL client to pipe the dump into."""
        return self.client or _CLIENT[self.engine]

    def scratch_endpoint(self) -> Endpoint:
        """Return the scratch database's connection (database engines only)."""
        assert self.scratch is not None  # guaranteed by _engine_fields
        return Endpoint(self.dialect, self.scratch)

    def live_endpoint(self) -> Endpoint | None:
        """Return the live database's connection, when row counts are compared."""
        return Endpoint(self.dialect, self.live) if self.live is not None else None

    def live_database(self) -> str | None:
        """Return the live database's name, if one is configured."""
        endpoint = self.live_endpoint()
        return endpoint.database if endpoint is not None else None

    def scratch_name(self) -> str:
        """Return the scratch database name or directory (for messages and safety checks)."""
        if self.directory is not None:
            return str(self.directory)
        return self.scratch_endpoint().database
