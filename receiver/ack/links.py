"""Signed, expiring, single-use action links (pure): `{external_url}/ack/{token}`.

A token is `base64url(claim) "." base64url(HMAC-SHA256(key, claim))`, where the claim is
`v1|incident|action|person|expires_at|nonce`. The nonce is the token's id: the store keeps the
ids of used tokens until they expire, which makes each link single-use. Keys for other purposes
(Mattermost callbacks, page sessions) are derived from the same secret with a label, so a token
made for one purpose never verifies for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from receiver.numbers import parse_uint

Action = Literal["ack", "resolve"]
ACTIONS: tuple[Action, ...] = ("ack", "resolve")
_VERSION = "v1"


class LinkError(Exception):
    """A token is unusable; `status` is the HTTP status the page answers with."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Claim:
    """What a token allows: one action on one incident, for one person, until a time."""

    incident_id: int
    action: Action
    person: str  # empty for a message posted to a channel rather than to a person
    expires_at: int
    nonce: str


def derive(secret: bytes, purpose: str) -> bytes:
    """Return a key for one purpose (links, mattermost, session, csrf) from the secret."""
    return hmac.new(secret, f"maintwatch:{purpose}".encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def mac(key: bytes, message: str) -> str:
    """Return the base64url HMAC-SHA256 of a message."""
    return _b64(hmac.new(key, message.encode(), hashlib.sha256).digest())


def sign(key: bytes, claim: Claim) -> str:
    """Return the token for a claim."""
    if "|" in claim.person:
        raise ValueError(f"person id {claim.person!r} must not contain '|'")
    fields = (claim.incident_id, claim.action, claim.person, claim.expires_at, claim.nonce)
    text = "|".join([_VERSION, *map(str, fields)])
    return f"{_b64(text.encode())}.{mac(key, text)}"


def _parse(text: str) -> Claim:
    parts = text.split("|")
    if len(parts) != 6 or parts[0] != _VERSION:
        raise LinkError("this link is not a maintwatch link", 400)
    _, incident, action, person, expires, nonce = parts
    incident_id, expires_at = parse_uint(incident), parse_uint(expires)
    if incident_id is None or expires_at is None or action not in ACTIONS:
        raise LinkError("this link is not a maintwatch link", 400)
    return Claim(incident_id, action, person, expires_at, nonce)


def verify(key: bytes, token: str, now: float) -> Claim:
    """Return the token's claim, or raise LinkError for a malformed, forged or expired token."""
    head, dot, signature = token.partition(".")
    if not dot or len(token) > 512:
        raise LinkError("this link is incomplete or not a maintwatch link", 400)
    try:
        text = _unb64(head).decode()
    except (ValueError, UnicodeDecodeError):
        raise LinkError("this link is incomplete or not a maintwatch link", 400) from None
    if not hmac.compare_digest(signature.encode(), mac(key, text).encode()):
        raise LinkError("this link's signature does not match: it was altered", 403)
    claim = _parse(text)
    if now >= claim.expires_at:
        raise LinkError("this link has expired; use the incidents page instead", 410)
    return claim


@dataclass(frozen=True)
class LinkMaker:
    """Build ack/resolve URLs for a recipient, rooted at the receiver's external URL."""

    key: bytes
    external_url: str
    expire: float

    def url(self, incident_id: int, action: Action, person: str, now: float) -> str:
        """Return one signed link."""
        claim = Claim(incident_id, action, person, int(now + self.expire), secrets.token_hex(8))
        return f"{self.external_url.rstrip('/')}/ack/{sign(self.key, claim)}"

    def urls(self, incident_id: int, person: str | None, now: float) -> tuple[str, str]:
        """Return (ack_url, resolve_url)."""
        who = person or ""
        return self.url(incident_id, "ack", who, now), self.url(incident_id, "resolve", who, now)


def link_maker(secret: str | None, external_url: str, expire: float) -> LinkMaker | None:
    """Return a LinkMaker when a secret and an external URL are configured, else None."""
    if not secret or not external_url:
        return None
    return LinkMaker(derive(secret.encode(), "links"), external_url, expire)


MATTERMOST_PATH = "/webhooks/mattermost"
MATTERMOST_TOKEN_TTL = 30 * 86400  # buttons stay usable as long as the post is relevant


def mattermost_context(key: bytes, incident_id: int, action: Action, now: float) -> dict[str, str]:
    """Return a button's `context` for Mattermost: a signed token naming the action."""
    claim = Claim(incident_id, action, "", int(now + MATTERMOST_TOKEN_TTL), secrets.token_hex(8))
    return {"token": sign(key, claim)}
