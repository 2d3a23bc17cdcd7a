"""Receiver configuration: YAML → frozen pydantic models, with cross-references checked.

The `channels` section is a union built from the channel REGISTRY by `type`, so a new channel
module needs no change here. Every problem is reported as `file: path: message`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, SecretStr, Tag, create_model, field_validator
from pydantic import model_validator as _model_validator

from maintwatch.configload import (
    ConfigError,
    Duration,
    SecretFromFile,
    StrictModel,
    Unique,
    load_file,
    load_model,
)
from receiver.connections import ServerConfig
from receiver.delivery.channels import REGISTRY, ChannelConfig
from receiver.escalation.model import PolicyConfig, policy_reference_problems
from receiver.escalation.settings import (
    EscalatorConfig,
    WatchdogConfig,
    watchdog_reference_problems,
)
from receiver.oncall.people import PersonConfig, people_reference_problems
from receiver.oncall.schedules import ScheduleConfig, schedule_reference_problems
from receiver.routing.matchers import parse_matcher
from receiver.silences.plan import AlertmanagerConfig, alertmanager_problems
from receiver.web.settings import (
    DigestConfig,
    InboundConfig,
    LinksConfig,
    WebConfig,
    digest_reference_problems,
)

DEFAULT_LISTEN = ":9840"


class SqliteStore(StrictModel):
    """Embedded store (default): one file, WAL, synchronous=FULL."""

    type: Literal["sqlite"] = "sqlite"
    path: Path = Path("maintwatch-receiver.db")


class PostgresStore(StrictModel):
    """PostgreSQL store, for several receiver replicas."""

    type: Literal["postgres"]
    dsn: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: SecretFromFile | None = None
    pool_size: int = Field(default=4, ge=1, le=64)


class IntakeConfig(StrictModel):
    """How an accepted webhook reaches the incidents.

    `inbox` (the default): the webhook is appended to an inbox and answered once the append
    is durable; a separate applier process applies the inbox to the store in order. With
    SQLite the inbox is a local file beside the store (WAL, fsync'd); with PostgreSQL it is
    the store's `inbox` table, shared by the replicas (one applier at a time applies it), so
    what a replica accepted never waits on that replica's disk. `inbox_path` with PostgreSQL
    selects a local inbox file instead. `direct`: the webhook is applied to the store before
    the answer.
    """

    mode: Literal["inbox", "direct"] | None = None
    inbox_path: Path | None = None


class WebhookConfig(StrictModel):
    """How Alertmanager authenticates and how much it may send.

    `auth` has no default: a receiver that pages people must not take webhooks from anyone
    by omission. `auth: none` has to be written out (and is warned about at start).
    """

    auth: Literal["none", "bearer", "basic"] | None = None
    token: SecretStr | None = None
    token_file: SecretFromFile | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_file: SecretFromFile | None = None
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_pending: int = Field(default=64, ge=1)

    @_model_validator(mode="after")
    def _credentials(self) -> WebhookConfig:
        if self.auth == "bearer" and self.bearer_token() is None:
            raise ValueError("auth: bearer needs token_file (or token: ${ENV})")
        if self.auth == "basic" and (not self.username or self.basic_password() is None):
            raise ValueError("auth: basic needs username and password_file (or password)")
        return self

    def bearer_token(self) -> SecretStr | None:
        """Return the configured bearer token, from the file or the inline/env value."""
        return self.token_file or self.token

    def basic_password(self) -> SecretStr | None:
        """Return the configured basic-auth password."""
        return self.password_file or self.password


class ApiConfig(StrictModel):
    """API authentication; without a token the /api/v1 endpoints are not served."""

    token: SecretStr | None = None
    token_file: SecretFromFile | None = None

    def bearer_token(self) -> SecretStr | None:
        """Return the API token, if configured."""
        return self.token_file or self.token


class RouteTarget(StrictModel):
    """Where a matching incident goes: channels, people on them, an escalation policy."""

    channels: list[str] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    policy: str | None = None


class RouteConfig(RouteTarget):
    """One ordered route: all matchers must match; first match wins unless `continue`.

    An `audit` route (an archive, a log) gets its messages but does not handle the incident:
    routing always goes on past it, and `default_route` still applies when no other route
    matched.
    """

    name: str | None = None
    matchers: list[str] = Field(default_factory=list)
    continue_: bool = Field(default=False, alias="continue")
    audit: bool = False

    @field_validator("matchers")
    @classmethod
    def _valid_matchers(cls, value: list[str]) -> list[str]:
        for text in value:
            parse_matcher(text)
        return value


class DeliveryConfig(StrictModel):
    """Outbox worker: retries with exponential backoff and jitter, then a fallback channel."""

    max_attempts: int = Field(default=5, ge=1)
    backoff_initial: Duration = 5.0
    backoff_max: Duration = 300.0
    give_up_after: Duration = 3600.0
    send_timeout: Duration = 30.0
    fallback_channel: str | None = None
    concurrency: int = Field(default=8, ge=1)  # per channel lane
    poll_interval: Duration = 1.0
    # How long past the send timeout a claimed row stays with its worker before another
    # worker (or this one after a restart) takes it over.
    lease_margin: Duration = Field(default=30.0, ge=0)


class RateLimitConfig(StrictModel):
    """At most `max_messages` per `window` per recipient on at-most-once (SMS) channels."""

    max_messages: int = Field(default=5, ge=1)
    window: Duration = 900.0


class SeverityConfig(StrictModel):
    """Which label holds the severity, and the tier for alerts without a known one."""

    label: str = "severity"
    default: Literal["critical", "warning", "info"] = "warning"


class RetentionConfig(StrictModel):
    """Prune old resolved incidents and their delivered notifications in bounded batches."""

    enabled: bool = True
    resolved_incidents: Duration = Field(default=90 * 86400.0, gt=0)
    delivered_notifications: Duration = Field(default=30 * 86400.0, gt=0)
    interval: Duration = Field(default=3600.0, gt=0)
    batch_size: int = Field(default=500, ge=1, le=10000)


class ReceiverBase(StrictModel):
    """Every section except `channels` (added from the registry by `config_model`)."""

    listen: str = DEFAULT_LISTEN
    server: ServerConfig = ServerConfig()
    external_url: str = ""
    store: Annotated[SqliteStore | PostgresStore, Field(discriminator="type")] = SqliteStore()
    webhook: WebhookConfig = WebhookConfig()
    intake: IntakeConfig = IntakeConfig()
    api: ApiConfig = ApiConfig()
    routes: list[RouteConfig] = Field(default_factory=list)
    default_route: RouteTarget = RouteTarget()
    people: list[PersonConfig] = Field(default_factory=list)
    schedules: list[ScheduleConfig] = Field(default_factory=list)
    policies: list[PolicyConfig] = Field(default_factory=list)
    delivery: DeliveryConfig = DeliveryConfig()
    sms_rate_limit: RateLimitConfig = RateLimitConfig()
    severity: SeverityConfig = SeverityConfig()
    escalation: EscalatorConfig = EscalatorConfig()
    watchdog: WatchdogConfig | None = None
    retention: RetentionConfig = RetentionConfig()
    links: LinksConfig = LinksConfig()
    web: WebConfig = WebConfig()
    inbound: InboundConfig = InboundConfig()
    digest: DigestConfig = DigestConfig()
    alertmanager: AlertmanagerConfig = AlertmanagerConfig()

    @field_validator("external_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        # Links in messages are built on it: without a scheme they would not be links at all.
        if value and not re.fullmatch(r"https?://[^/\s]+(/\S*)?", value):
            raise ValueError(
                f"expected an absolute http(s) URL such as https://pager.example.com, got {value!r}"
            )
        return value

    @property
    def channel_configs(self) -> list[ChannelConfig]:
        """Return the configured channels (the field is added per registry)."""
        channels: list[ChannelConfig] = getattr(self, "channels", [])
        return channels


def _channel_type(value: Any) -> Any:
    return value.get("type") if isinstance(value, dict) else getattr(value, "type", None)


def _channel_union() -> Any:
    members = [Annotated[cls.config_type, Tag(kind)] for kind, cls in sorted(REGISTRY.items())]
    if not members:
        # No channel module registered: any channel entry is an unknown type.
        members = [Annotated[ChannelConfig, Tag("\x00none")]]
    return Annotated[
        Union[tuple(members)],  # noqa: UP007 - a Union built at runtime needs the subscript form
        Discriminator(
            _channel_type,
            custom_error_type="unknown_channel_type",
            custom_error_message=f"unknown channel type; known: {', '.join(sorted(REGISTRY))}",
        ),
    ]


def config_model() -> type[ReceiverBase]:
    """Build the top-level model with `channels` as a union of the registered channel types."""
    union = _channel_union()
    model: type[ReceiverBase] = create_model(
        "ReceiverConfig",
        __base__=ReceiverBase,
        channels=(list[union], Field(default_factory=list)),  # type: ignore[valid-type]
    )
    return model


UNIQUE: Unique = {
    "channels": ("name", "channel name"),
    "people": ("id", "person id"),
    "policies": ("name", "policy name"),
    "schedules": ("name", "schedule name"),
}
"""Names other sections refer to; each must name one item."""


def _target_problems(target: RouteTarget, path: str, known: dict[str, set[str]]) -> list[str]:
    out = [
        f"{path}.channels[{i}]: unknown channel {name!r}"
        for i, name in enumerate(target.channels)
        if name not in known["channel"]
    ]
    out += [
        f"{path}.people[{i}]: unknown person {pid!r}"
        for i, pid in enumerate(target.people)
        if pid not in known["person"]
    ]
    if target.policy is not None and target.policy not in known["policy"]:
        out.append(f"{path}.policy: unknown policy {target.policy!r}")
    return out


def reference_problems(config: ReceiverBase) -> list[str]:
    """Return `path: message` for every dangling reference (duplicates: UNIQUE)."""
    out: list[str] = []
    if config.webhook.auth is None:
        out.append(
            "webhook.auth: not set: use bearer (token_file) or basic (username, password_file), "
            "or write `auth: none` to accept webhooks from anyone who can reach the port"
        )
    channels = [c.name for c in config.channel_configs]
    known = {
        "channel": set(channels),
        "person": {p.id for p in config.people},
        "policy": {p.name for p in config.policies},
        "schedule": {s.name for s in config.schedules},
    }
    out += people_reference_problems(config.people, known["channel"])
    out += schedule_reference_problems(config.schedules, known["person"])
    out += policy_reference_problems(config.policies, known)
    out += watchdog_reference_problems(config.watchdog, known)
    for index, route in enumerate(config.routes):
        out += _target_problems(route, f"routes[{index}]", known)
    out += _target_problems(config.default_route, "default_route", known)
    fallback = config.delivery.fallback_channel
    if fallback is not None and fallback not in known["channel"]:
        out.append(f"delivery.fallback_channel: unknown channel {fallback!r}")
    out += digest_reference_problems(config.digest, known["channel"])
    out += alertmanager_problems(config.alertmanager)
    return out


def _clean(problems: list[str]) -> list[str]:
    # The channel union's tag (the channel type) is an implementation detail in locations.
    kinds = "|".join(re.escape(k) for k in REGISTRY) or "\x00none"
    pattern = re.compile(rf"(channels\[\d+\])\.(?:{kinds})(?=[.:])")
    return [pattern.sub(r"\1", p) for p in problems]


def load_config_text(text: str, source: str = "<config>") -> ReceiverBase:
    """Validate config text; raise ConfigError listing every problem."""
    try:
        return load_model(config_model(), text, source, reference_problems, unique=UNIQUE)
    except ConfigError as exc:
        raise ConfigError(_clean(exc.problems)) from None


def load_config(path: str | Path) -> ReceiverBase:
    """Load and validate the receiver config file."""
    try:
        return load_file(config_model(), path, reference_problems, UNIQUE)
    except ConfigError as exc:
        raise ConfigError(_clean(exc.problems)) from None
