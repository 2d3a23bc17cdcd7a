"""The interface each restore engine implements (one module per engine) and their registry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from exporter.drills.config import RestoreConfig
from exporter.drills.model import Check
from exporter.drills.stream import PipeOutcome

MARKER = "maintwatch restore drill scratch: created by the drill, dropped after it"


@dataclass
class Inspection:
    """What the checks found in the restored scratch target."""

    checks: list[Check] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    files: int | None = None
    size: int | None = None


class ScratchDatabase:
    """What the database engines share: the scratch endpoint and its database's name."""

    def __init__(self, config: RestoreConfig) -> None:
        self.config = config
        self.scratch = config.scratch_endpoint()
        self.db = self.scratch.database

    def describe(self) -> str:
        """Return the scratch database."""
        return self.scratch.describe()


class Engine(Protocol):
    """Create, fill, inspect and drop one scratch target; never touch anything else."""

    def describe(self) -> str:
        """Return the scratch target for messages (never a password)."""

    def prepare(self) -> None:
        """Create the scratch target with the drill's marker; raise Refused when unsafe."""

    def restore(
        self, content: Iterator[bytes], deadline: float, cancel: threading.Event
    ) -> PipeOutcome:
        """Stream the decompressed backup into the scratch target."""

    def inspect(self, previous: tuple[int, int] | None) -> Inspection:
        """Run the configured checks on the restored target."""

    def drop(self) -> bool:
        """Remove the scratch target if it carries the drill's marker; return True if removed."""


def make_engine(config: RestoreConfig) -> Engine:
    """Return the engine for the config's `engine` (imported lazily: drivers are optional)."""
    if config.engine == "tarball":
        from exporter.drills.tarball import TarballEngine

        return TarballEngine(config)
    if config.engine == "postgres":
        from exporter.drills.postgres import PostgresEngine

        return PostgresEngine(config)
    from exporter.drills.mariadb import MariadbEngine

    return MariadbEngine(config)
