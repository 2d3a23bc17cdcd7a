"""Page logins: a signed session cookie, and CSRF tokens bound to the session."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from receiver.ack.links import mac
from receiver.appkeys import CLOCK
from receiver.numbers import parse_uint
from receiver.web.state import WEB, WebState

COOKIE = "mw_session"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def check_login(state: WebState, name: str, password: str) -> str | None:
    """Return the logged-in name for valid credentials, else None (constant-time compares)."""
    matched = None
    for user in state.web.users:
        ok_name = hmac.compare_digest(user.name.encode(), name.encode())
        ok_password = hmac.compare_digest(
            user.password_file.get_secret_value().encode(), password.encode()
        )
        if ok_name and ok_password:
            matched = user.name
    token = state.api_token if state.web.api_token_login else None
    if matched is None and token and hmac.compare_digest(token.encode(), password.encode()):
        matched = state.web.api_token_user
    return matched


def session_value(state: WebState, name: str, expires: int) -> str:
    """Return the cookie value for a logged-in name."""
    who = base64.urlsafe_b64encode(name.encode()).decode()
    body = f"{who}.{expires}"
    return f"{body}.{mac(state.keys.session, body)}"


def session_user(state: WebState, value: str, now: float) -> str | None:
    """Return the name in a valid, unexpired session cookie, else None."""
    body, _, signature = value.rpartition(".")
    if not body or not hmac.compare_digest(
        signature.encode(), mac(state.keys.session, body).encode()
    ):
        return None
    who, _, expires = body.partition(".")
    until = parse_uint(expires)
    if until is None or now >= until:
        return None
    return base64.urlsafe_b64decode(who).decode()


def csrf_token(state: WebState, session: str) -> str:
    """Return the form token for a session (an HMAC of it: no server-side storage)."""
    return mac(state.keys.csrf, session)


def csrf_ok(state: WebState, session: str, given: str) -> bool:
    """Return whether a posted form token belongs to this session."""
    return hmac.compare_digest(csrf_token(state, session).encode(), given.encode())


def current(request: web.Request) -> tuple[str, str] | None:
    """Return (user, session cookie) of a logged-in request."""
    value = request.cookies.get(COOKIE, "")
    user = session_user(request.app[WEB], value, request.app[CLOCK]()) if value else None
    return None if user is None else (user, value)


def set_session(request: web.Request, response: web.StreamResponse, name: str) -> None:
    """Start a session: `Secure`, `HttpOnly`, `SameSite=Strict`."""
    state = request.app[WEB]
    expires = int(request.app[CLOCK]() + state.web.session_ttl)
    response.set_cookie(
        COOKIE,
        session_value(state, name, expires),
        max_age=int(state.web.session_ttl),
        path="/",
        secure=state.web.secure_cookies,
        httponly=True,
        samesite="Strict",
    )


def login_redirect(request: web.Request) -> web.HTTPSeeOther:
    """Return a redirect to the login page that comes back here afterwards."""
    return web.HTTPSeeOther(request.app.router["login"].url_for().with_query(next=request.path_qs))
