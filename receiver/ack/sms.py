"""Twilio inbound SMS: `12 ack` / `12 res` replies from known people, answered with TwiML.

The reply code is the incident id (SMS pages carry it as `Reply "12 ack"`). The request must
carry a valid `X-Twilio-Signature` computed over the configured public URL (`external_url`),
not the Host header, so it verifies behind a proxy too. Unknown senders get an empty answer;
anything that is not a command gets a help text, at most N times per number per hour.

A signature covers no time, so a recorded request stays valid: each `MessageSid` is applied
once (kept with the used link ids for REPLAY_WINDOW) and a replay gets an empty answer.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape

from aiohttp import web
from twilio.request_validator import RequestValidator

from receiver.ack.actions import IncidentNotFound, InvalidTransition
from receiver.appkeys import ACTIONS, CLOCK, CONFIG, LOG
from receiver.store import StoreUnavailable
from receiver.web.state import WEB

PATH = "/webhooks/twilio/sms"
HELP = 'maintwatch: reply "<id> ack" to acknowledge or "<id> res" to resolve, e.g. "12 ack".'
HOUR = 3600.0
REPLAY_WINDOW = 90 * 86400.0  # as long as resolved incidents are kept by default
_VERBS: dict[str, Literal["ack", "resolve"]] = {
    "ack": "ack",
    "a": "ack",
    "acknowledge": "ack",
    "ok": "ack",
    "res": "resolve",
    "r": "resolve",
    "resolve": "resolve",
}
_CODE_FIRST = re.compile(r"^#?(\d{1,12})\s+([a-z]+)$")
_VERB_FIRST = re.compile(r"^([a-z]+)\s+#?(\d{1,12})$")


@dataclass(frozen=True)
class Command:
    """A parsed reply: act on one incident."""

    incident_id: int
    action: Literal["ack", "resolve"]


def parse_reply(text: str) -> Command | None:
    """Return the command in an SMS reply (`12 ack`, `ack 12`, `#12 res`), else None."""
    words = " ".join(text.strip().lower().rstrip(".!").split())
    found = _CODE_FIRST.match(words)
    if found:
        code, verb = found.groups()
    else:
        found = _VERB_FIRST.match(words)
        if not found:
            return None
        verb, code = found.groups()
    action = _VERBS.get(verb)
    return Command(int(code), action) if action else None


def twiml(message: str | None) -> web.Response:
    """Return a TwiML answer: one XML-escaped message, or none."""
    inner = f"<Message>{escape(message)}</Message>" if message else ""
    text = f'<?xml version="1.0" encoding="UTF-8"?><Response>{inner}</Response>'
    return web.Response(text=text, content_type="text/xml", charset="utf-8")


def signed_url(external_url: str, query: str) -> str:
    """Return the URL Twilio signed: the configured public URL of this endpoint."""
    url = external_url.rstrip("/") + PATH
    return f"{url}?{query}" if query else url


async def twilio_sms(request: web.Request) -> web.StreamResponse:
    """POST /webhooks/twilio/sms."""
    config = request.app[CONFIG]
    inbound = config.inbound.twilio
    assert inbound is not None  # the route exists only when configured
    form = await request.post()
    params = {key: str(value) for key, value in form.items()}
    validator = RequestValidator(inbound.auth_token_file.get_secret_value())
    url = signed_url(config.external_url, request.query_string)
    if not validator.validate(url, params, request.headers.get("X-Twilio-Signature", "")):
        request.app[LOG].warning("sms_reply_rejected", reason="bad signature")
        return web.Response(status=403, text="invalid signature\n")
    sender = params.get("From", "")
    person = next((p for p in config.people if p.phone and p.phone == sender), None)
    if person is None:
        request.app[LOG].warning("sms_reply_unknown_sender", sender=sender)
        return twiml(None)
    sid = params.get("MessageSid", "")
    ledger = request.app[WEB].require_ledger()
    try:
        now = request.app[CLOCK]()
        if sid and not await ledger.use_link(f"twilio:{sid}", 0, now + REPLAY_WINDOW, now):
            request.app[LOG].warning("sms_reply_replayed", message_sid=sid, sender=sender)
            return twiml(None)
        return await _answer(request, person.id, sender, params.get("Body", ""))
    except StoreUnavailable as exc:
        request.app[LOG].error("sms_reply_store_unavailable", error=str(exc))
        with contextlib.suppress(StoreUnavailable):  # Twilio retries: let that one through
            await ledger.forget_link(f"twilio:{sid}")
        return web.Response(status=503, text="store unavailable, retry\n")


async def _answer(request: web.Request, person: str, phone: str, body: str) -> web.Response:
    command = parse_reply(body)
    if command is None:
        limit = request.app[CONFIG].inbound.twilio.help_replies_per_hour  # type: ignore[union-attr]
        ledger = request.app[WEB].require_ledger()
        allowed = await ledger.allow_help(phone, request.app[CLOCK](), limit, HOUR)
        return twiml(HELP if allowed else None)
    actions = request.app[ACTIONS]
    call = actions.ack if command.action == "ack" else actions.resolve
    try:
        summary = await call(command.incident_id, person, "sms")
    except IncidentNotFound:
        return twiml(f"maintwatch: there is no incident {command.incident_id}.")
    except InvalidTransition:
        return twiml(f"maintwatch: incident {command.incident_id} is already resolved.")
    done = "acknowledged" if command.action == "ack" else "resolved"
    if not summary.changed:
        state = summary.incident.state
        return twiml(f"maintwatch: incident {command.incident_id} was already {state}.")
    return twiml(f"maintwatch: incident {command.incident_id} {done}, thanks {person}.")


def add_routes(app: web.Application, external_url: str, enabled: bool) -> None:
    """Serve the webhook when `inbound.twilio` is configured (it needs `external_url`)."""
    if enabled and external_url:
        app.router.add_post(PATH, twilio_sms)
