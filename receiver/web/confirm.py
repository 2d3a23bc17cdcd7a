"""`/ack/{token}`: a signed link's confirm page (GET changes nothing), acted on by its POST.

Mail scanners and chat unfurlers fetch links; only a person pressing the button posts.
"""

from __future__ import annotations

from aiohttp import web

from receiver.ack.actions import IncidentNotFound, InvalidTransition
from receiver.ack.links import Claim, LinkError, verify
from receiver.appkeys import ACTIONS, CLOCK, LOG
from receiver.store import StoreUnavailable
from receiver.web.render import message, page
from receiver.web.state import WEB
from receiver.web.views import incident_view

WORDS = {"ack": "Acknowledge", "resolve": "Resolve"}


def _claim(request: web.Request) -> Claim:
    state = request.app[WEB]
    if state.maker is None:
        raise LinkError("links are not enabled on this receiver", 404)
    return verify(state.keys.links, request.match_info["token"], request.app[CLOCK]())


def _refused(request: web.Request, exc: LinkError) -> web.Response:
    request.app[LOG].warning("link_refused", reason=exc.reason, status=exc.status)
    return message("This link cannot be used", exc.reason, exc.status)


async def confirm_page(request: web.Request) -> web.StreamResponse:
    """GET: show what the link will do, and a button that POSTs."""
    try:
        claim = _claim(request)
    except LinkError as exc:
        return _refused(request, exc)
    try:
        found = await request.app[WEB].require_reads().detail(claim.incident_id, 1)
    except StoreUnavailable as exc:
        return message("Store unavailable", f"Try again in a moment: {exc}", 503)
    if found is None:
        return message("Not found", f"Incident {claim.incident_id} does not exist.", 404)
    return page(
        "confirm.html",
        i=incident_view(found, request.app[CLOCK]()),
        action=WORDS[claim.action],
        person=claim.person,
    )


async def confirm_post(request: web.Request) -> web.StreamResponse:
    """POST: use the link once and apply its action."""
    try:
        claim = _claim(request)
    except LinkError as exc:
        return _refused(request, exc)
    ledger = request.app[WEB].require_ledger()
    now = request.app[CLOCK]()
    try:
        first = await ledger.use_link(claim.nonce, claim.incident_id, claim.expires_at, now)
    except StoreUnavailable as exc:
        return message("Store unavailable", f"Nothing changed; try again: {exc}", 503)
    if not first:
        return _refused(request, LinkError("this link was used already; it works once", 409))
    return await _apply(request, claim)


async def _apply(request: web.Request, claim: Claim) -> web.Response:
    actions = request.app[ACTIONS]
    call = actions.ack if claim.action == "ack" else actions.resolve
    try:
        summary = await call(claim.incident_id, claim.person or "link", "link")
    except IncidentNotFound as exc:
        return message("Not found", str(exc), 404)
    except InvalidTransition as exc:
        return message("Not possible", str(exc), 409)
    except StoreUnavailable as exc:
        # Nothing happened: give the link back so the person can press again.
        await request.app[WEB].require_ledger().forget_link(claim.nonce)
        return message("Store unavailable", f"Nothing changed; try again: {exc}", 503)
    done = "acknowledged" if claim.action == "ack" else "resolved"
    text = (
        f"Incident {claim.incident_id} is {done}."
        if summary.changed
        else (f"Incident {claim.incident_id} was already {summary.incident.state}.")
    )
    return message("Done", text, 200)
