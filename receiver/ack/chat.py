"""Chat buttons: Slack interactivity (signed requests) and Mattermost action callbacks.

Slack signs each request: `X-Slack-Signature: v0=hex(HMAC-SHA256(secret, "v0:{ts}:{body}"))`
with `X-Slack-Request-Timestamp` within 5 minutes of now; the form field `payload` holds JSON
whose button `value` is `ack:<id>` or `resolve:<id>` (see receiver/delivery/channels/slack.py).
Mattermost does not sign callbacks, so each button's `context` carries a token signed with a
key derived from `links.secret_file` (see `mattermost_context`). On Slack the acting user
becomes the person whose `chat` handle matches, else `slack:<name>`. Mattermost's `user_name`
and `user_id` are not signed (anyone who can read the post can replay its token under any
name), so the actor is what the token proves: the person it was issued to, else `mattermost`; the
claimed name is only logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from aiohttp import web

from receiver.ack.actions import IncidentNotFound, InvalidTransition
from receiver.ack.links import (
    MATTERMOST_PATH,
    LinkError,
    verify,
)
from receiver.appkeys import ACTIONS, CLOCK, CONFIG, LOG
from receiver.delivery.channels.slack import after_click, mrkdwn_escape
from receiver.numbers import parse_uint
from receiver.oncall.people import PersonConfig
from receiver.store import StoreUnavailable
from receiver.web.state import WEB

SLACK_PATH = "/webhooks/slack"
SLACK_ANSWER_TIMEOUT = 2.0  # Slack wants the button's HTTP answer within 3 s
Verb = Literal["ack", "resolve"]


@dataclass(frozen=True)
class Click:
    """A button press: what to do to which incident, and who pressed it."""

    action: Verb
    incident_id: int
    handles: tuple[str, ...]  # the user's names on the chat system, best first
    system: str

    @property
    def done(self) -> str:
        """Return the action in the past tense, as people read it."""
        return "acknowledged" if self.action == "ack" else "resolved"


def slack_signature_ok(secret: str, timestamp: str, body: bytes, given: str) -> bool:
    """Return whether a Slack request body and timestamp are signed with `secret`."""
    if parse_uint(timestamp) is None:
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.encode())


def parse_value(value: str) -> tuple[Verb, int] | None:
    """Return (action, incident id) from a button value such as `ack:12`."""
    verb, _, raw = value.partition(":")
    incident = parse_uint(raw)
    if verb not in ("ack", "resolve") or incident is None:
        return None
    return ("ack" if verb == "ack" else "resolve"), incident


def slack_click(payload: dict[str, Any]) -> Click | None:
    """Return the click in a Slack `block_actions` payload, else None."""
    if payload.get("type") != "block_actions" or not payload.get("actions"):
        return None
    parsed = parse_value(str(payload["actions"][0].get("value", "")))
    if parsed is None:
        return None
    user = payload.get("user") or {}
    handles = tuple(str(user[k]) for k in ("username", "name", "id") if user.get(k))
    return Click(parsed[0], parsed[1], handles, "slack")


def person_for(people: Sequence[PersonConfig], handles: Sequence[str], system: str) -> str:
    """Return the id of the person with a matching chat handle, else `system:<handle>`."""
    for handle in handles:
        bare = handle.lstrip("@")
        for person in people:
            if person.chat and person.chat.lstrip("@") == bare:
                return person.id
    return f"{system}:{handles[0] if handles else 'unknown'}"


@dataclass(frozen=True)
class Outcome:
    """What a click did, in words for the clicker; `changed` when the incident changed."""

    text: str
    changed: bool
    actor: str


async def _apply(request: web.Request, click: Click, actor: str | None = None) -> Outcome:
    actor = actor or person_for(request.app[CONFIG].people, click.handles, click.system)
    actions = request.app[ACTIONS]
    call = actions.ack if click.action == "ack" else actions.resolve
    try:
        summary = await call(click.incident_id, actor, click.system)
    except (IncidentNotFound, InvalidTransition) as exc:
        return Outcome(str(exc), False, actor)
    if not summary.changed:
        state = summary.incident.state
        return Outcome(f"Incident {click.incident_id} was already {state}.", False, actor)
    return Outcome(f"Incident {click.incident_id} {click.done} by {actor}.", True, actor)


async def _answer_slack(
    request: web.Request, payload: dict[str, Any], click: Click, outcome: Outcome
) -> None:
    """Tell the clicker through `response_url`: Slack ignores the body of the HTTP answer to a
    button. A change edits the message itself (so the channel sees it); anything else is an
    ephemeral note to the clicker only."""
    url = payload.get("response_url")
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return
    if outcome.changed:
        note = f"{click.done.capitalize()} by *{mrkdwn_escape(outcome.actor)}*"
        message = payload.get("message")
        body = after_click(message if isinstance(message, dict) else {}, click.action, note)
    else:
        body = {"response_type": "ephemeral", "replace_original": False, "text": outcome.text}
    timeout = aiohttp.ClientTimeout(total=SLACK_ANSWER_TIMEOUT)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.post(url, json=body) as response,
        ):
            failure = f"HTTP {response.status}" if response.status >= 300 else ""
    except (aiohttp.ClientError, TimeoutError) as exc:
        failure = f"{type(exc).__name__}: {exc}"
    if failure:  # the action itself is done and recorded; only the message edit is lost
        request.app[LOG].warning(
            "chat_update_failed", system="slack", incident_id=click.incident_id, reason=failure
        )


async def slack_actions(request: web.Request) -> web.StreamResponse:
    """POST /webhooks/slack: verify the signature, then apply the button's action."""
    app = request.app
    slack = app[CONFIG].inbound.slack
    assert slack is not None  # the route exists only when configured
    body = await request.read()
    stamp = request.headers.get("X-Slack-Request-Timestamp", "")
    given = request.headers.get("X-Slack-Signature", "")
    now = app[CLOCK]()
    secret = slack.signing_secret_file.get_secret_value()
    sent_at = parse_uint(stamp)
    fresh = sent_at is not None and abs(now - sent_at) <= slack.max_clock_skew
    if not fresh or not slack_signature_ok(secret, stamp, body, given):
        app[LOG].warning("chat_action_rejected", system="slack", reason="signature or timestamp")
        return web.Response(status=401, text="invalid signature\n")
    form = await request.post()
    try:
        payload = json.loads(str(form.get("payload", "")))
    except ValueError:
        return web.Response(status=400, text="payload: expected JSON\n")
    click = slack_click(payload) if isinstance(payload, dict) else None
    if click is None:
        return web.Response(status=200, text="")  # other interactions: nothing to do
    try:
        outcome = await _apply(request, click)
    except StoreUnavailable:
        return web.Response(status=503, text="store unavailable, retry\n")
    await _answer_slack(request, payload, click, outcome)
    return web.json_response({"response_type": "ephemeral", "text": outcome.text})


async def mattermost_actions(request: web.Request) -> web.StreamResponse:
    """POST /webhooks/mattermost: a button callback; its context token is the authority."""
    app = request.app
    try:
        data = await request.json()
        token = str(data["context"]["token"])
        claim = verify(app[WEB].keys.mattermost, token, app[CLOCK]())
    except LinkError as exc:
        app[LOG].warning("chat_action_rejected", system="mattermost", reason=exc.reason)
        return web.json_response({"ephemeral_text": exc.reason}, status=exc.status)
    except (ValueError, KeyError, TypeError):
        return web.json_response({"ephemeral_text": "not a maintwatch button"}, status=400)
    claimed = [str(data[k]) for k in ("user_name", "user_id") if data.get(k)]
    click = Click(claim.action, claim.incident_id, (), "mattermost")
    app[LOG].info("chat_action_unverified_user", system="mattermost", claimed=claimed[:1])
    try:
        outcome = await _apply(request, click, claim.person or "mattermost")
    except StoreUnavailable:
        return web.json_response({"ephemeral_text": "store unavailable, retry"}, status=503)
    answer: dict[str, Any] = {"ephemeral_text": outcome.text}
    if outcome.changed:
        # Mattermost edits the post with `update`; its attachments (and buttons) stay.
        answer["update"] = {"message": f"**{click.done.capitalize()}** by {outcome.actor}"}
    return web.json_response(answer)


def add_routes(app: web.Application, slack: bool, mattermost: bool) -> None:
    """Serve the callbacks that are configured."""
    if slack:
        app.router.add_post(SLACK_PATH, slack_actions)
    if mattermost:
        app.router.add_post(MATTERMOST_PATH, mattermost_actions)
