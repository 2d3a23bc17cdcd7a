"""The thresholds file: what an SRE tunes (thresholds, `for`, severities, selectors, SLOs)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from maintwatch.configload import Duration, StrictModel, load_file

Severity = Literal["critical", "warning", "info", "none"]


class Tier(StrictModel):
    """One severity level of an alert: it fires past `threshold` for `for`."""

    severity: Severity
    threshold: Duration = 0.0
    for_: Duration | None = Field(default=None, alias="for")


class AlertSettings(StrictModel):
    """Settings of one alert; `tiers` when it has several severities, else one inline tier."""

    severity: Severity | None = None
    threshold: Duration | None = None
    for_: Duration = Field(default=0.0, alias="for")
    keep_firing_for: Duration = 0.0
    selector: str = ""
    params: dict[str, str] = Field(default_factory=dict)
    tiers: list[Tier] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> AlertSettings:
        if self.tiers is None and self.severity is None:
            raise ValueError("set either `severity` (one tier) or `tiers`")
        if self.tiers is not None and (self.severity is not None or self.threshold is not None):
            raise ValueError("with `tiers`, put severity and threshold inside each tier")
        return self

    def effective_tiers(self) -> list[Tier]:
        """Return the tiers, turning the inline form into a single tier."""
        if self.tiers is not None:
            return [
                t if t.for_ is not None else t.model_copy(update={"for_": self.for_})
                for t in self.tiers
            ]
        assert self.severity is not None  # guaranteed by _one_form
        tier = Tier.model_validate(
            {"severity": self.severity, "threshold": self.threshold or 0.0, "for": self.for_}
        )
        return [tier]


class BurnWindow(StrictModel):
    """A multi-window burn-rate condition: both windows burn faster than `factor`."""

    long: str = Field(pattern=r"^\d+[mhd]$")
    short: str = Field(pattern=r"^\d+[mhd]$")
    factor: float = Field(gt=0)


class BurnAlert(StrictModel):
    """A burn-rate alert: fires when any of its window pairs burns too fast."""

    severity: Severity
    for_: Duration = Field(default=0.0, alias="for")
    keep_firing_for: Duration = 0.0
    windows: list[BurnWindow] = Field(min_length=1)


class Objective(StrictModel):
    """An availability target for the probes that match `selector`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    objective: float = Field(gt=0, lt=1)
    selector: str


class SLOSettings(StrictModel):
    """Probe-based availability SLOs (blackbox_exporter `probe_success`)."""

    sli_metric: str = "probe_success"
    objectives: list[Objective] = Field(default_factory=list)
    page: BurnAlert
    ticket: BurnAlert


class RequestsSettings(StrictModel):
    """Which request counter and matcher make the per-job HTTP error ratio."""

    metric: str = Field(default="http_requests_total", pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    error_matcher: str = 'code=~"5.."'


class Thresholds(StrictModel):
    """The whole thresholds file."""

    runbook_base_url: str = "docs/runbooks"
    requests: RequestsSettings = RequestsSettings()
    slo: SLOSettings
    alerts: dict[str, AlertSettings]


def load_thresholds(path: str | Path) -> Thresholds:
    """Read and validate a thresholds file; raise ConfigError naming every problem."""
    return load_file(Thresholds, path)
