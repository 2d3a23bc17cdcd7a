"""Config sections of the acknowledge paths, the incidents page and the daily digest."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import BeforeValidator, Field

from maintwatch.configload import Duration, SecretFromFile, StrictModel
from receiver.graphs.settings import GraphsConfig
from receiver.oncall.schedules import TimeZoneName, parse_clock
from receiver.web.throttle import LoginThrottleConfig


class LinksConfig(StrictModel):
    """Signed single-use ack/resolve links; without `secret_file` messages carry no links."""

    secret_file: SecretFromFile | None = None
    expire: Duration = Field(default=86400.0, gt=0)


class WebUser(StrictModel):
    """Someone who may log in to the incidents page."""

    name: str = Field(min_length=1)
    password_file: SecretFromFile


class WebConfig(StrictModel):
    """Login to the incidents page: `users`, or the API token when `api_token_login`.

    A token login is always named `api_token_user`, whatever name was typed: the token proves
    no one's identity, so it must not let its holder act under someone else's name.
    """

    users: list[WebUser] = Field(default_factory=list)
    api_token_login: bool = False
    api_token_user: str = Field(default="api-token", min_length=1, max_length=100)
    login_throttle: LoginThrottleConfig = LoginThrottleConfig()
    session_ttl: Duration = Field(default=12 * 3600.0, gt=0)
    recent: Duration = Field(default=7 * 86400.0, gt=0)  # how far back resolved ones are listed
    secure_cookies: bool = True  # only a plain-http test setup turns this off
    graphs: GraphsConfig = Field(default_factory=GraphsConfig)


class TwilioInbound(StrictModel):
    """Inbound SMS replies: the auth token Twilio signs its webhook requests with."""

    auth_token_file: SecretFromFile
    help_replies_per_hour: int = Field(default=3, ge=0)


class SlackInbound(StrictModel):
    """Slack interactivity: the app's signing secret."""

    signing_secret_file: SecretFromFile
    max_clock_skew: Duration = Field(default=300.0, gt=0)


class InboundConfig(StrictModel):
    """Webhooks that let people act from SMS and chat."""

    twilio: TwilioInbound | None = None
    slack: SlackInbound | None = None


class DigestConfig(StrictModel):
    """The daily digest of info-tier incidents, per route, at a local time."""

    at: Annotated[time, BeforeValidator(parse_clock)] = time(9, 0)
    timezone: TimeZoneName = "UTC"
    channels: list[str] = Field(default_factory=list)  # empty: each route's own channels
    enabled: bool = True
    poll_interval: Duration = Field(default=60.0, gt=0)


def digest_reference_problems(digest: DigestConfig, channels: set[str]) -> list[str]:
    """Return `path: message` for digest channels that are not configured."""
    return [
        f"digest.channels[{i}]: unknown channel {name!r}"
        for i, name in enumerate(digest.channels)
        if name not in channels
    ]
