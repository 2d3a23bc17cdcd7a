"""Render the web pages: jinja2 with autoescape, a strict Content-Security-Policy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web
from markupsafe import Markup

TEMPLATE_DIR = Path(__file__).parent

# Inline, but allowed by its hash in the CSP: no stylesheet route, nothing else inline runs.
STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0 auto;padding:.75rem;max-width:72rem;color:#222;
line-height:1.4;overflow-wrap:anywhere}
h1{font-size:1.4rem;margin:.5rem 0}h2{font-size:1.15rem;margin:1.2rem 0 .4rem}
h3{font-size:1.05rem;margin:0 0 .3rem}p{margin:.25rem 0}
nav{display:flex;flex-wrap:wrap;gap:.3rem .8rem;align-items:center;margin-bottom:.5rem}
nav .who{margin-left:auto;color:#666}
.incident{border:1px solid #ddd;border-left:.4rem solid #999;border-radius:.4rem;
padding:.5rem .75rem;margin:.6rem 0;background:#fff}
.incident.critical{border-left-color:#b00020}.incident.warning{border-left-color:#c77700}
.incident.info{border-left-color:#1565c0}.incident.is-resolved{border-left-color:#2e7d32;
background:#f7fbf7}.incident.is-acknowledged{background:#fafafa}
.badge{display:inline-block;padding:0 .4rem;border-radius:.3rem;color:#fff;background:#777;
font-size:.85rem;text-transform:uppercase}.badge.critical{background:#b00020}
.badge.warning{background:#a06000}.badge.info{background:#1565c0}
.state-triggered{color:#b00020;font-weight:600}.state-acknowledged{color:#555}
.state-resolved{color:#2e7d32}.description{font-weight:600}.meta,.note,.more{color:#555}
.alerts{list-style:none;padding:0;margin:.4rem 0}.alert{border-top:1px solid #eee;padding:.3rem 0}
.alert .status{font-size:.8rem;text-transform:uppercase;color:#b00020;margin-right:.3rem}
.alert-resolved .status{color:#2e7d32}.labels code{display:inline-block;max-width:100%;
background:#f1f1f1;border-radius:.2rem;padding:0 .25rem;margin:.1rem .15rem .1rem 0;
font-size:.85rem;white-space:normal;overflow-wrap:anywhere}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin:.5rem 0 .2rem}
.actions form,form.inline{display:inline}
button{font:inherit;padding:.45rem 1rem;min-height:2.75rem;border:1px solid #888;
border-radius:.4rem;background:#f4f4f4;cursor:pointer}
button.primary{background:#b00020;border-color:#b00020;color:#fff}
nav button{min-height:auto;padding:.15rem .6rem}
figure.graph{margin:.4rem 0}figcaption{font-size:.8rem;color:#666}
svg.graph{display:block;width:100%;max-width:40rem;height:auto}
.timeline{padding-left:1.2rem}.timeline li{margin:.2rem 0}.timeline time{color:#666}
.error{color:#b00020}.hint{color:#444;border-top:1px solid #ddd;margin-top:1rem}
.login input{font:inherit;padding:.4rem;width:100%;max-width:22rem;display:block}
.runbook pre{white-space:pre-wrap;background:#f6f6f6;padding:.5rem;overflow-wrap:anywhere}
.runbook code{background:#f1f1f1}table{border-collapse:collapse}td,th{border:1px solid #ddd;
padding:.3rem}
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
    env.globals.update(style=Markup(STYLE))  # noqa: S704 - our own constant CSS
    return env


ENV = _env()


def _response(text: str, status: int) -> web.Response:
    return web.Response(
        text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
    )


def page(template: str, status: int = 200, **context: Any) -> web.Response:
    """Render a page with the security headers."""
    return _response(ENV.get_template(template).render(**context), status)


async def page_off_loop(template: str, status: int = 200, **context: Any) -> web.Response:
    """Render a page in a worker thread: a big page must not hold up webhook intake."""
    text = await asyncio.to_thread(ENV.get_template(template).render, **context)
    return _response(text, status)


def message(title: str, text: str, status: int) -> web.Response:
    """Render a short page saying what happened (errors included)."""
    return page("message.html", status, title=title, text=text)
