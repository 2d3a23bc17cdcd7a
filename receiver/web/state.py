"""What the web handlers share: keys derived from the links secret, the ledger, logins."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from receiver.ack.links import MATTERMOST_PATH, LinkMaker, derive, link_maker, mattermost_context
from receiver.config import ReceiverBase
from receiver.web.ledger import Ledger
from receiver.web.reads import PageReads
from receiver.web.settings import LinksConfig, WebConfig
from receiver.web.throttle import LoginThrottle


@dataclass(frozen=True)
class Keys:
    """HMAC keys, one per purpose, all derived from one secret."""

    links: bytes
    session: bytes
    csrf: bytes
    mattermost: bytes

    @classmethod
    def from_secret(cls, secret: str | None) -> Keys:
        """Derive the keys; without a secret use a random one (sessions end at restart)."""
        raw = secret.encode() if secret else secrets.token_bytes(32)
        return cls(*(derive(raw, p) for p in ("links", "session", "csrf", "mattermost")))


@dataclass
class WebState:
    """Per-app state of the web and ack paths (the ledger is set once the store is open)."""

    keys: Keys
    web: WebConfig
    links: LinksConfig
    api_token: str | None
    maker: LinkMaker | None
    reply_codes: bool = False  # SMS replies are accepted (inbound.twilio is configured)
    chat_callback_url: str = ""  # where Mattermost buttons post (links secret + external URL)
    ledger: Ledger | None = None
    throttle: LoginThrottle | None = None
    external_url: str = ""  # the receiver's own public URL (runbook links resolve against it)
    reads: PageReads | None = None
    names: Mapping[str, str] = field(default_factory=dict)  # person id → name, for "paged"
    # Page views read and render one at a time: the rest wait, intake keeps the CPU it needs.
    views: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))

    def require_reads(self) -> PageReads:
        """Return the page reads (set with the ledger once the store is open)."""
        if self.reads is None:
            raise RuntimeError("the store is not open yet")
        return self.reads

    def link_fields(
        self, clock: Callable[[], float]
    ) -> Callable[[int, str | None], Mapping[str, str]]:
        """Return the `links` callable `receiver.delivery.notify.notification` takes."""

        def fields(incident_id: int, person: str | None) -> Mapping[str, str]:
            out = {"reply_code": str(incident_id)} if self.reply_codes else {}
            if self.external_url:
                out["receiver_url"] = self.external_url
            now = clock()
            if self.maker is not None:
                out["ack_url"], out["resolve_url"] = self.maker.urls(incident_id, person, now)
            if self.chat_callback_url:
                key = self.keys.mattermost
                out["chat_callback_url"] = self.chat_callback_url
                out["chat_ack_token"] = mattermost_context(key, incident_id, "ack", now)["token"]
                out["chat_resolve_token"] = mattermost_context(key, incident_id, "resolve", now)[
                    "token"
                ]
            return out

        return fields

    def require_ledger(self) -> Ledger:
        """Return the ledger (the store is open while requests are served)."""
        if self.ledger is None:
            raise RuntimeError("the store is not open yet")
        return self.ledger


def web_state(config: ReceiverBase) -> WebState:
    """Build the state from the config."""
    links = config.links
    secret = links.secret_file.get_secret_value() if links.secret_file else None
    token = config.api.bearer_token()
    return WebState(
        keys=Keys.from_secret(secret),
        web=config.web,
        links=links,
        api_token=token.get_secret_value() if token else None,
        maker=link_maker(secret, config.external_url, links.expire),
        reply_codes=config.inbound.twilio is not None,
        throttle=LoginThrottle(config.web.login_throttle),
        external_url=config.external_url,
        names={p.id: p.name for p in config.people},
        chat_callback_url=(
            config.external_url.rstrip("/") + MATTERMOST_PATH
            if secret and config.external_url
            else ""
        ),
    )


WEB = web.AppKey("web_state", WebState)
