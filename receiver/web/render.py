"""Render the web pages: jinja2 with autoescape, a strict Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from markupsafe import Markup

from maintwatch.durations import format_duration

TEMPLATE_DIR = Path(__file__).parent

# Inline, but allowed by its hash in the CSP: no stylesheet route, nothing else inline runs.
STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;
text-align:left;vertical-align:top}.critical{color:#b00020}.warning{color:#a06000}
.info{color:#1565c0}.state-resolved{color:#2e7d32}.state-acknowledged{color:#666}
code{background:#f3f3f3;padding:0 .2rem;margin-right:.2rem}form.inline{display:inline}
button{margin:.1rem}.error{color:#b00020}nav{margin-bottom:1rem}
""".strip()
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{STYLE_HASH}'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # a signed link in the address bar must not leak
    "Cache-Control": "no-store",
}


def safe_url(value: object) -> str:
    """Return `value` when it is an http(s) URL, else empty (no javascript: links)."""
    text = str(value or "")
    return text if urlsplit(text).scheme in ("http", "https") else ""


def age(opened: str | None, now: float) -> str:
    """Return how long ago an RFC 3339 time was, e.g. `2h5m`."""
    if not opened:
        return ""
    seconds = now - datetime.fromisoformat(opened).timestamp()
    return format_duration(max(0.0, float(int(seconds))))


def local_time(value: str | float | None) -> str:
    """Format an RFC 3339 string or epoch seconds as `YYYY-MM-DD HH:MM:SS UTC`."""
    if value is None or value == "":
        return ""
    moment = (
        datetime.fromtimestamp(value, UTC)
        if isinstance(value, int | float)
        else datetime.fromisoformat(value)
    )
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(safe_url=safe_url, local_time=local_time)
    env.globals.update(style=Markup(STYLE), age=age)  # noqa: S704 - our own constant CSS
    return env


ENV = _env()


def page(template: str, status: int = 200, **context: Any) -> web.Response:
    """Render a page with the security headers."""
    text = ENV.get_template(template).render(**context)
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
    )


def message(title: str, text: str, status: int) -> web.Response:
    """Render a short page saying what happened (errors included)."""
    return page("message.html", status, title=title, text=text)
