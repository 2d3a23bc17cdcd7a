"""HTTP server: /metrics (text or OpenMetrics, gzip on request), health, readiness, index page."""

from __future__ import annotations

import gzip
import html

from aiohttp import web
from prometheus_client import exposition, openmetrics

from exporter.runtime import Runtime
from maintwatch import __version__

RUNTIME = web.AppKey("runtime", Runtime)

_OPENMETRICS = "application/openmetrics-text"


class _Encoded:
    """Cache the encoded exposition per snapshot generation, format and compression."""

    def __init__(self) -> None:
        self._generation = -1
        self._bodies: dict[tuple[bool, bool], bytes] = {}

    def get(self, runtime: Runtime, openmetrics_format: bool, compressed: bool) -> bytes:
        if runtime.generation != self._generation:
            self._generation, self._bodies = runtime.generation, {}
        key = (openmetrics_format, compressed)
        body = self._bodies.get(key)
        if body is None:
            body = runtime.exposition(openmetrics_format)
            if compressed:
                body = gzip.compress(body, compresslevel=1)
            self._bodies[key] = body
        return body


ENCODED = web.AppKey("encoded", _Encoded)


def _wants_openmetrics(accept: str) -> bool:
    for part in accept.split(","):
        media = part.split(";")[0].strip()
        if media == _OPENMETRICS:
            return True
    return False


async def metrics(request: web.Request) -> web.Response:
    """Serve the latest snapshot; never waits on a collector."""
    runtime = request.app[RUNTIME]
    use_om = _wants_openmetrics(request.headers.get("Accept", ""))
    gz = "gzip" in request.headers.get("Accept-Encoding", "")
    body = request.app[ENCODED].get(runtime, use_om, gz)
    content_type = (
        openmetrics.exposition.CONTENT_TYPE_LATEST
        if use_om
        else exposition.CONTENT_TYPE_PLAIN_0_0_4
    )
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    if gz:
        response.headers["Content-Encoding"] = "gzip"
    return response


async def healthy(_: web.Request) -> web.Response:
    """Answer 200 while the process runs."""
    return web.Response(text="maintwatch exporter is Healthy.\n")


async def ready(request: web.Request) -> web.Response:
    """Answer 200 once every collector instance has completed a first refresh."""
    if request.app[RUNTIME].ready():
        return web.Response(text="maintwatch exporter is Ready.\n")
    return web.Response(
        status=503, text="maintwatch exporter is starting: first refresh running.\n"
    )


async def index(request: web.Request) -> web.Response:
    """List collector instances and their state."""
    rows = []
    for state in request.app[RUNTIME].states():
        status = "up" if state.up else ("down" if state.refreshed else "pending")
        rows.append(
            "<tr>"
            f"<td>{html.escape(state.key[0])}</td><td>{html.escape(state.key[1])}</td>"
            f'<td class="{status}">{status}</td>'
            f"<td>{state.duration * 1000:.1f} ms</td><td>{state.interval:g}s</td>"
            f"<td>{html.escape(state.last_error)}</td>"
            f"<td>{html.escape(state.collector.describe())}</td></tr>"
        )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>maintwatch exporter</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;text-align:left}}
.up{{color:#080}}.down{{color:#b00}}.pending{{color:#888}}</style></head>
<body><h1>maintwatch exporter {html.escape(__version__)}</h1>
<p><a href="/metrics">/metrics</a> · <a href="/-/healthy">/-/healthy</a> ·
<a href="/-/ready">/-/ready</a></p>
<table><tr><th>collector</th><th>name</th><th>state</th><th>last refresh</th>
<th>interval</th><th>last error</th><th>reads</th></tr>
{"".join(rows) or '<tr><td colspan="7">no collectors configured</td></tr>'}
</table></body></html>"""
    return web.Response(text=page, content_type="text/html")


def make_app(runtime: Runtime) -> web.Application:
    """Build the aiohttp application around a running runtime."""
    app = web.Application()
    app[RUNTIME] = runtime
    app[ENCODED] = _Encoded()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/-/healthy", healthy)
    app.router.add_get("/-/ready", ready)
    app.router.add_get("/", index)
    return app
