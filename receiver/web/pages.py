"""The incidents page: list, one incident with its timeline, Ack/Resolve buttons, login."""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from receiver.actions import IncidentNotFound, InvalidTransition
from receiver.appkeys import ACTIONS, CLOCK, LOG, STORE
from receiver.numbers import parse_uint
from receiver.store import StoreUnavailable
from receiver.web.auth import (
    COOKIE,
    check_login,
    csrf_ok,
    csrf_token,
    current,
    login_redirect,
    set_session,
)
from receiver.web.render import message, page
from receiver.web.state import WEB
from receiver.web.views import incident_view, split

LIST_LIMIT = 200
VERBS = ("ack", "unack", "resolve")


def _local_path(target: str) -> str:
    """Return `target` if it is a path on this site (no open redirect), else `/`."""
    # URL parsers drop tabs and newlines: `/<TAB>/evil.example` would become `//evil.example`.
    if any(c == "\\" or ord(c) <= 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    ok = target.startswith("/") and not target.startswith("//")
    return target if ok else "/"


async def index(request: web.Request) -> web.StreamResponse:
    """GET /: open and recently resolved incidents."""
    who = current(request)
    if who is None:
        raise login_redirect(request)
    store, now = request.app[STORE], request.app[CLOCK]()
    try:
        rows = await store.incidents(None, {}, LIST_LIMIT)
        full = await asyncio.gather(*(store.incident(r["id"]) for r in rows))
    except StoreUnavailable as exc:
        return message("Store unavailable", f"The store cannot be reached: {exc}", 503)
    open_, done = split([f for f in full if f is not None], now, request.app[WEB].web.recent)
    return page(
        "incidents.html",
        user=who[0],
        csrf=csrf_token(request.app[WEB], who[1]),
        open=open_,
        done=done,
        now=now,
    )


async def show(request: web.Request) -> web.StreamResponse:
    """GET /incidents/{id}: one incident, its alerts and timeline."""
    who = current(request)
    if who is None:
        raise login_redirect(request)
    raw = request.match_info["id"]
    incident = parse_uint(raw)
    try:
        found = await request.app[STORE].incident(incident) if incident is not None else None
        if found is not None and "events" not in found:
            found["events"] = await request.app[WEB].require_ledger().events(found["id"])
    except StoreUnavailable as exc:
        return message("Store unavailable", f"The store cannot be reached: {exc}", 503)
    if found is None:
        return message("Not found", f"There is no incident {raw}.", 404)
    return page(
        "incident.html",
        user=who[0],
        csrf=csrf_token(request.app[WEB], who[1]),
        i=incident_view(found, request.app[CLOCK]()),
        now=request.app[CLOCK](),
    )


async def act(request: web.Request) -> web.StreamResponse:
    """POST /incidents/{id}/{verb}: a button; CSRF-checked, then back to where it came from."""
    who = current(request)
    if who is None:
        return message("Not logged in", "Log in, then try again.", 401)
    form = await request.post()
    if not csrf_ok(request.app[WEB], who[1], str(form.get("csrf", ""))):
        return message("Forbidden", "The form is stale or forged; reload the page.", 403)
    incident, verb = parse_uint(request.match_info["id"]), request.match_info["verb"]
    if incident is None or verb not in VERBS:
        return message("Not found", "No such incident or action.", 404)
    actions = request.app[ACTIONS]
    call = {"ack": actions.ack, "unack": actions.unack, "resolve": actions.resolve}[verb]
    try:
        await call(incident, who[0], "web")
    except IncidentNotFound as exc:
        return message("Not found", str(exc), 404)
    except InvalidTransition as exc:
        return message("Not possible", str(exc), 409)
    except StoreUnavailable as exc:
        return message("Store unavailable", f"Nothing changed; try again: {exc}", 503)
    raise web.HTTPSeeOther(_local_path(str(form.get("back", "/"))))


async def login_form(request: web.Request) -> web.StreamResponse:
    """GET /login."""
    state = request.app[WEB]
    enabled = bool(state.web.users) or (state.web.api_token_login and bool(state.api_token))
    return page(
        "login.html", error="", enabled=enabled, next=_local_path(request.query.get("next", "/"))
    )


async def login(request: web.Request) -> web.StreamResponse:
    """POST /login: check credentials (throttled per client and in total), start a session."""
    form = await request.post()
    target = _local_path(str(form.get("next", "/")))
    name = str(form.get("name", "")).strip()
    state, client, now = request.app[WEB], request.remote or "", request.app[CLOCK]()
    assert state.throttle is not None
    wait = state.throttle.wait(client, now)
    if wait > 0:  # refused before the password is even compared
        error = "Too many failed logins; try again later."
        answer = page("login.html", 429, error=error, enabled=True, next=target)
        answer.headers["Retry-After"] = str(math.ceil(wait))
        return answer
    user = check_login(state, name, str(form.get("password", "")))
    if user is None:
        if state.throttle.failed(client, now):
            request.app[LOG].warning(
                "login_throttled", client=client, seconds=state.throttle.window
            )
        return page("login.html", 401, error="Wrong name or password.", enabled=True, next=target)
    response = web.HTTPSeeOther(target)
    set_session(request, response, user)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: end the session."""
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response
