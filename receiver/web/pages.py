"""The incidents page: list, one incident with its timeline, Ack/Resolve buttons, login."""

from __future__ import annotations

import math

from aiohttp import web

from receiver.ack.actions import IncidentNotFound, InvalidTransition
from receiver.appkeys import ACTIONS, CLOCK, LOG
from receiver.graphs import GRAPHS
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
from receiver.web.reads import LIST_OPEN, PAGE_ALERTS
from receiver.web.render import message, page, page_off_loop
from receiver.web.state import WEB
from receiver.web.views import incident_view, split

REFRESH = 60  # seconds between the pages' own reloads (meta refresh: no script)
VERBS = ("ack", "unack", "resolve")


def _local_path(target: str) -> str:
    """Return `target` if it is a path on this site (no open redirect), else `/`."""
    # URL parsers drop tabs and newlines: `/<TAB>/evil.example` would become `//evil.example`.
    if any(c == "\\" or ord(c) <= 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    ok = target.startswith("/") and not target.startswith("//")
    return target if ok else "/"


async def index(request: web.Request) -> web.StreamResponse:
    """GET /: open incidents in triage order, then those resolved within `web.recent`."""
    who = current(request)
    if who is None:
        raise login_redirect(request)
    state, now = request.app[WEB], request.app[CLOCK]()
    number = parse_uint(request.query.get("page", "1")) or 1
    async with state.views:
        try:
            reads = state.require_reads()
            open_rows, done_rows, total = await reads.listing(now - state.web.recent, number)
        except StoreUnavailable as exc:
            return message("Store unavailable", f"The store cannot be reached: {exc}", 503)
        open_, done = split(open_rows, done_rows, now, state.names)
        return await page_off_loop(
            "incidents.html",
            user=who[0],
            csrf=csrf_token(state, who[1]),
            open=open_,
            done=done,
            pages=pagination(total, number, LIST_OPEN),
            now=now,
            refresh=REFRESH,
        )


async def show(request: web.Request) -> web.StreamResponse:
    """GET /incidents/{id}?page=N: one incident, one page of its alerts, its timeline."""
    who = current(request)
    if who is None:
        raise login_redirect(request)
    raw = request.match_info["id"]
    incident = parse_uint(raw)
    number = parse_uint(request.query.get("page", "1")) or 1
    state, now = request.app[WEB], request.app[CLOCK]()
    async with state.views:
        try:
            found = None
            if incident is not None:
                found = await state.require_reads().detail(incident, number)
        except StoreUnavailable as exc:
            return message("Store unavailable", f"The store cannot be reached: {exc}", 503)
        if found is None:
            return message("Not found", f"There is no incident {raw}.", 404)
        view = incident_view(found, now, names=state.names)
    # Outside the gate: waiting on Prometheus costs no CPU and must not hold other views up.
    # Graphs read alerts as the API shows them, the form mail's graphs are drawn from too.
    graphs = await request.app[GRAPHS].for_alerts([a.to_json() for a in found.alerts or ()], now)
    async with state.views:
        return await page_off_loop(
            "incident.html",
            user=who[0],
            csrf=csrf_token(state, who[1]),
            i=view,
            graphs=graphs,
            pages=pagination(found.alert_count or 0, number, PAGE_ALERTS),
            now=now,
            refresh=REFRESH,
        )


def pagination(count: int, number: int, size: int) -> dict[str, int]:
    """Return where one page sits among `count` items shown `size` at a time."""
    last = max(1, -(-count // size))
    first = (number - 1) * size
    return {
        "number": number,
        "last": last,
        "first": first + 1 if count else 0,
        "until": min(count, first + size),
        "count": count,
    }


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
        request.app[WEB].require_reads().recent.forget()  # the page it goes back to shows it
    except IncidentNotFound as exc:
        return message("Not found", str(exc), 404)
    except InvalidTransition as exc:
        return message("Not possible", str(exc), 409)
    except StoreUnavailable as exc:
        return message("Store unavailable", f"Nothing changed; try again: {exc}", 503)
    raise web.HTTPSeeOther(_local_path(str(form.get("back", "/"))))


async def login_form(request: web.Request) -> web.StreamResponse:
    """GET /login."""
    target = _local_path(request.query.get("next", "/"))
    return page("login.html", **_login_context(request), error="", next=target)


def _login_context(request: web.Request) -> dict[str, bool]:
    """Return which ways of logging in this receiver accepts (the page says how)."""
    state = request.app[WEB]
    token_login = state.web.api_token_login and bool(state.api_token)
    users = bool(state.web.users)
    return {"enabled": users or token_login, "users": users, "token_login": token_login}


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
        answer = page("login.html", 429, **_login_context(request), error=error, next=target)
        answer.headers["Retry-After"] = str(math.ceil(wait))
        return answer
    user = check_login(state, name, str(form.get("password", "")))
    if user is None:
        if state.throttle.failed(client, now):
            request.app[LOG].warning(
                "login_throttled", client=client, seconds=state.throttle.window
            )
        context = _login_context(request)
        return page("login.html", 401, **context, error="Wrong name or password.", next=target)
    response = web.HTTPSeeOther(target)
    set_session(request, response, user)
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: end the session."""
    response = web.HTTPSeeOther("/login")
    response.del_cookie(COOKIE, path="/")
    raise response
