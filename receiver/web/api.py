"""JSON API: list and show incidents, ack/unack/resolve by hand (bearer token `api.token_file`)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aiohttp import web
from pydantic import SecretStr

from receiver.ack.actions import IncidentNotFound, InvalidTransition
from receiver.appkeys import ACTIONS, CLOCK, CONFIG, STORE
from receiver.config import ReceiverBase
from receiver.intake.wiring import read_your_writes
from receiver.numbers import parse_uint
from receiver.oncall.ical import render
from receiver.oncall.people import Directory, who_is_on_call
from receiver.oncall.schedules import shifts
from receiver.routing.matchers import parse_labels
from receiver.store import StoreUnavailable
from receiver.store.base import STATES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_LIMIT = 1000


def _guard(token: SecretStr, handler: Handler) -> Handler:
    expected = f"Bearer {token.get_secret_value()}".encode()

    async def guarded(request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "unauthorized"}, status=401, headers={"WWW-Authenticate": "Bearer"}
            )
        try:
            return await handler(request)
        except StoreUnavailable as exc:
            return web.json_response({"error": f"store unavailable: {exc}"}, status=503)

    return guarded


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def list_incidents(request: web.Request) -> web.Response:
    """GET /api/v1/incidents?state=triggered&label=team=ops&limit=100."""
    state = request.query.get("state")
    if state is not None and state not in STATES:
        return _bad(f"state: expected one of {', '.join(STATES)}")
    try:
        labels: dict[str, str] = {}
        for item in request.query.getall("label", []):
            labels.update(parse_labels(item))
        limit = int(request.query.get("limit", "100"))
    except ValueError as exc:
        return _bad(str(exc))
    if not 1 <= limit <= MAX_LIMIT:
        return _bad(f"limit: expected 1..{MAX_LIMIT}")
    found = await request.app[STORE].incidents(state, labels, limit)
    return web.json_response({"incidents": [incident.to_json() for incident in found]})


def _incident_id(request: web.Request) -> int | None:
    return parse_uint(request.match_info["id"])


async def show_incident(request: web.Request) -> web.Response:
    """GET /api/v1/incidents/{id}: the incident, its alerts, notifications and delivery log."""
    incident_id = _incident_id(request)
    if incident_id is None:
        return web.json_response({"error": "no such incident"}, status=404)
    return await _document(request, incident_id)


async def _document(request: web.Request, incident_id: int, **extra: bool) -> web.Response:
    """Answer with the incident, its alerts, notifications, delivery log and timeline."""
    store = request.app[STORE]
    found = await store.incident(incident_id)
    if found is None:
        return web.json_response({"error": "no such incident"}, status=404)
    events = tuple(await store.timeline(incident_id))
    return web.json_response({**replace(found, events=events).to_json(), **extra})


def _act(verb: str) -> Handler:
    """Return the handler of POST /api/v1/incidents/{id}/<verb> (ack, unack, resolve)."""

    async def handler(request: web.Request) -> web.Response:
        incident_id = _incident_id(request)
        if incident_id is None:
            return web.json_response({"error": "no such incident"}, status=404)
        actor = await _actor(request)
        if actor is None:
            return _bad('body: expected JSON like {"by": "alice"} (or no body)')
        actions = request.app[ACTIONS]
        method = {"ack": actions.ack, "unack": actions.unack, "resolve": actions.resolve}[verb]
        try:
            summary = await method(incident_id, actor, "api")
        except IncidentNotFound:
            return web.json_response({"error": "no such incident"}, status=404)
        except InvalidTransition as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return await _document(request, incident_id, changed=summary.changed)

    return handler


async def _actor(request: web.Request) -> str | None:
    """Return who acts: the body's `by` (a person id or name), else "api"; None when malformed."""
    if not request.can_read_body:
        return "api"
    try:
        data = await request.json()
    except ValueError:
        return None
    by = data.get("by", "api") if isinstance(data, dict) else None
    return by if isinstance(by, str) and 0 < len(by) <= 200 else None


def _now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.app[CLOCK](), UTC)


async def oncall(request: web.Request) -> web.Response:
    """GET /api/v1/oncall?at=2026-03-29T02:30&schedule=primary: who is on call."""
    config = request.app[CONFIG]
    directory = Directory(config.people, config.schedules)
    query = request.query
    try:
        found = who_is_on_call(directory, _now(request), query.get("at"), query.get("schedule"))
    except ValueError as exc:
        return _bad(str(exc))
    return web.json_response({"oncall": [item.to_dict() for item in found]})


async def schedule_ical(request: web.Request) -> web.Response:
    """GET /api/v1/schedules/{name}.ics?days=60: shifts from a week ago to `days` ahead."""
    config = request.app[CONFIG]
    name = request.match_info["name"]
    schedule = next((s for s in config.schedules if s.name == name), None)
    if schedule is None:
        return web.json_response({"error": "no such schedule"}, status=404)
    days = parse_uint(request.query.get("days", "60"), max_digits=3)
    if days is None or not 1 <= days <= 366:
        return _bad("days: expected 1..366")
    now = _now(request)
    found = shifts(schedule, now - timedelta(days=7), now + timedelta(days=days))
    text = render(name, found, {p.id: p.name for p in config.people}, now)
    return web.Response(text=text, content_type="text/calendar", charset="utf-8")


def add_routes(app: web.Application, config: ReceiverBase) -> None:
    """Register the API when a token is configured (no token: no API)."""
    token = config.api.bearer_token()
    if token is None:
        return
    app.router.add_get("/api/v1/incidents", _guard(token, read_your_writes(list_incidents)))
    app.router.add_get(r"/api/v1/incidents/{id}", _guard(token, read_your_writes(show_incident)))
    for verb in ("ack", "unack", "resolve"):
        app.router.add_post(rf"/api/v1/incidents/{{id}}/{verb}", _guard(token, _act(verb)))
    app.router.add_get("/api/v1/oncall", _guard(token, oncall))
    app.router.add_get(r"/api/v1/schedules/{name}.ics", _guard(token, schedule_ical))
