"""The project's runbooks (`docs/runbooks/*.md`, package data) served as HTML, no login needed.

Rules link `docs/runbooks/<Alert>.md`; messages resolve that against the receiver's external
URL, so the link a phone opens at 3 a.m. is this route.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

import markdown
from aiohttp import web
from markupsafe import Markup

from receiver.web.render import message, page

PATH = "/docs/runbooks"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


def _folder() -> Traversable:
    return resources.files("receiver").joinpath("runbooks")


def names() -> list[str]:
    """Return the alert names that have a runbook, sorted."""
    found = (f.name for f in _folder().iterdir() if f.name.endswith(".md"))
    return sorted(name.removesuffix(".md") for name in found)


@cache
def rendered(name: str) -> Markup | None:
    """Return a runbook as HTML (our own Markdown files), or None when there is none."""
    if not _NAME.fullmatch(name):
        return None
    source = _folder().joinpath(f"{name}.md")
    if not source.is_file():
        return None
    html = markdown.markdown(
        source.read_text(encoding="utf-8"), extensions=["fenced_code", "tables"]
    )
    return Markup(html)  # noqa: S704 - rendered from the runbooks shipped in the package


async def show(request: web.Request) -> web.StreamResponse:
    """GET /docs/runbooks/{name}.md: one runbook."""
    name = request.match_info["name"]
    body = rendered(name)
    if body is None:
        return message("Not found", f"There is no runbook {name!r}.", 404)
    return page("runbook.html", name=name, body=body, index=PATH + "/")


async def index(_: web.Request) -> web.StreamResponse:
    """GET /docs/runbooks/: every runbook."""
    return page("runbooks.html", names=names(), base=PATH)


def add_routes(app: web.Application) -> None:
    """Serve the runbooks at their stable paths."""
    app.router.add_get(PATH + "/", index)
    app.router.add_get(PATH + r"/{name}.md", show)
