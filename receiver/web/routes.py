"""Register the page, login, link and inbound webhook routes; open the ledger with the store."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from receiver import chat_actions, digest, inbound_sms
from receiver.appkeys import STORE
from receiver.config import ReceiverBase
from receiver.graphs import graphs_ctx
from receiver.store.sqlite import SqliteBackend
from receiver.web import confirm, pages, runbooks
from receiver.web.ledger import Ledger
from receiver.web.reads import PageReads
from receiver.web.sqlite_reader import SqliteReader
from receiver.web.state import WEB, web_state


async def _ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    store = app[STORE]
    ledger = Ledger(store)
    app[WEB].ledger = ledger
    # SQLite: pages read on connections of their own, never queueing before intake's writes.
    reader = SqliteReader(store.path) if isinstance(store, SqliteBackend) else None
    app[WEB].reads = PageReads(reader.query if reader else ledger.query, store)
    try:
        yield
    finally:
        if reader is not None:
            reader.close()


def add_routes(app: web.Application, config: ReceiverBase) -> None:
    """Add the web routes; call after the store's cleanup_ctx is registered."""
    app[WEB] = web_state(config)
    app.cleanup_ctx.append(_ledger_ctx)
    app.cleanup_ctx.append(digest.digest_ctx)
    app.cleanup_ctx.append(graphs_ctx(config.web.graphs))
    router = app.router
    router.add_get("/", pages.index, name="index")
    router.add_get("/login", pages.login_form, name="login")
    router.add_post("/login", pages.login)
    router.add_post("/logout", pages.logout)
    router.add_get(r"/incidents/{id}", pages.show)
    router.add_post(r"/incidents/{id}/{verb}", pages.act)
    router.add_get(r"/ack/{token}", confirm.confirm_page)
    router.add_post(r"/ack/{token}", confirm.confirm_post)
    runbooks.add_routes(app)
    inbound = config.inbound
    inbound_sms.add_routes(app, config.external_url, inbound.twilio is not None)
    chat_actions.add_routes(app, inbound.slack is not None, config.links.secret_file is not None)
