"""Where graphs come from: Prometheus (the alert's, or a configured one) and the bounds."""

from __future__ import annotations

from pydantic import Field

from maintwatch.configload import Duration, SecretFromFile, StrictModel


class GraphsConfig(StrictModel):
    """Per-alert graphs on the incident page, queried from Prometheus by the receiver."""

    enabled: bool = True
    # Empty: the Prometheus each alert's generatorURL names. Set: that one, for every alert.
    prometheus_url: str = Field(default="", pattern=r"^(https?://\S+)?$")
    username: str = ""
    password_file: SecretFromFile | None = None
    bearer_token_file: SecretFromFile | None = None
    timeout: Duration = Field(default=2.0, gt=0, le=30)  # a page view never waits longer
    range: Duration = Field(default=6 * 3600.0, gt=0)
    per_page: int = Field(default=10, ge=0, le=50)  # graphs on one page of alerts
    cache: Duration = Field(default=30.0, ge=0)  # the page refreshes itself: reuse answers
