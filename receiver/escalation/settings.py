"""Config sections of the escalation worker and the dead man's switch (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, Field

from maintwatch.configload import Duration, StrictModel
from receiver.escalation.model import _target


class EscalatorConfig(StrictModel):
    """How often the worker looks for due timers, and when the auditor calls one overdue."""

    poll_interval: Duration = Field(default=1.0, gt=0, le=60)
    batch_size: int = Field(default=500, ge=1, le=10000)
    overdue_after: Duration = Field(default=60.0, gt=0)
    audit_interval: Duration = Field(default=30.0, gt=0)


class WatchdogConfig(StrictModel):
    """The always-firing alert that proves the alerting pipeline works, and whom to page."""

    alertname: str = Field(default="Watchdog", min_length=1)
    expect_every: Duration = Field(default=300.0, gt=0)
    notify: list[Annotated[str, AfterValidator(_target)]] = Field(min_length=1)
    via: list[str] = Field(default_factory=list)
    check_interval: Duration | None = Field(default=None, gt=0)

    @property
    def interval(self) -> float:
        """Return how often to check (default: a tenth of `expect_every`, at most 30 s)."""
        return self.check_interval or min(30.0, self.expect_every / 10)


def watchdog_reference_problems(
    watchdog: WatchdogConfig | None, known: Mapping[str, set[str]]
) -> list[str]:
    """Return `path: message` for every target or `via` naming nothing configured."""
    if watchdog is None:
        return []
    out = []
    for index, target in enumerate(watchdog.notify):
        kind, _, name = target.partition(":")
        if name not in known[kind]:
            out.append(f"watchdog.notify[{index}]: unknown {kind} {name!r}")
    out += [
        f"watchdog.via[{index}]: unknown channel {name!r}"
        for index, name in enumerate(watchdog.via)
        if name not in known["channel"]
    ]
    return out
