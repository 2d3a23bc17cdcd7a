"""Register the page, login, link and inbound webhook routes."""

from __future__ import annotations

from aiohttp import web

from receiver.ack import chat as chat_actions
from receiver.ack import sms as inbound_sms
from receiver.config import ReceiverBase
from receiver.intake.wiring import read_your_writes
from receiver.web import confirm, pages, runbooks


def add_routes(app: web.Application, config: ReceiverBase) -> None:
    """Add the page, login, link and inbound webhook routes."""
    router = app.router
    router.add_get("/", read_your_writes(pages.index), name="index")
    router.add_get("/login", pages.login_form, name="login")
    router.add_post("/login", pages.login)
    router.add_post("/logout", pages.logout)
    router.add_get(r"/incidents/{id}", read_your_writes(pages.show))
    router.add_post(r"/incidents/{id}/{verb}", pages.act)
    router.add_get(r"/ack/{token}", confirm.confirm_page)
    router.add_post(r"/ack/{token}", confirm.confirm_post)
    runbooks.add_routes(app)
    inbound = config.inbound
    inbound_sms.add_routes(app, config.external_url, inbound.twilio is not None)
    chat_actions.add_routes(app, inbound.slack is not None, config.links.secret_file is not None)
