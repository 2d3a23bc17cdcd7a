"""The http collector against real local aiohttp servers (plain and TLS)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from structlog.testing import capture_logs
from yarl import URL

from exporter.collectors.base import Context
from exporter.collectors.http import HttpCollector, HttpConfig
from exporter.collectors.registry import load_config_text
from exporter.runtime import Runtime
from maintwatch.configload import ConfigError
from tests.conftest import free_port
from tests.exporter._tls_helpers import Pki
from tests.exporter.conftest import Samples, promtool_check, refresh

RELEASE = web.AppKey("release", asyncio.Event)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="database: healthy\n")


async def _fail(request: web.Request) -> web.Response:
    return web.Response(status=500, text="boom")


async def _slow(request: web.Request) -> web.Response:
    await request.app[RELEASE].wait()  # released at teardown, never by a sleep
    return web.Response(text="late")


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "checks": [{"db": True}, {"queue": 1}]})


async def _auth(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != "Bearer s3cret":
        return web.Response(status=401)
    return web.Response(text=f"{request.method} {request.headers.get('X-Probe')}")


async def _host(request: web.Request) -> web.Response:
    return web.Response(text=f"host={request.headers.get('Host')}")


async def _moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/ok")


def make_app() -> web.Application:
    """Return the health-endpoint test app."""
    app = web.Application()
    app[RELEASE] = asyncio.Event()
    app.router.add_get("/ok", _ok)
    app.router.add_get("/fail", _fail)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/json", _json)
    app.router.add_route("*", "/auth", _auth)
    app.router.add_get("/moved", _moved)
    app.router.add_get("/host", _host)
    return app


async def _serve(ssl_context: ssl.SSLContext | None) -> AsyncIterator[str]:
    app = make_app()
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        app[RELEASE].set()
        await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[str]:
    """Serve the test app over HTTP; yield its base URL."""
    async for url in _serve(None):
        yield url


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """Return a test PKI under the test's temp dir."""
    return Pki(tmp_path)


@pytest.fixture
async def tls_server(pki: Pki) -> AsyncIterator[str]:
    """Serve the test app over HTTPS with a certificate for 127.0.0.1's name `localhost`."""
    async for url in _serve(pki.server_context(pki.leaf("localhost"))):
        yield url.replace("127.0.0.1", "localhost")


def collector(context: Context, url: str, **fields: Any) -> HttpCollector:
    """Build an http collector from config fields."""
    return HttpCollector(HttpConfig.model_validate({"name": "app", "url": url, **fields}), context)


async def probe(context: Context, url: str, **fields: Any) -> tuple[Samples, list[Any]]:
    """Refresh once; return the samples and the captured log events."""
    with capture_logs() as logs:
        samples = await refresh(collector(context, url, **fields))
    return samples, logs


async def test_ok(context: Context, server: str) -> None:
    samples, logs = await probe(context, f"{server}/ok")
    assert samples.get("maintwatch_http_probe_success", target="app") == 1
    assert samples.get("maintwatch_http_probe_status_code", target="app") == 200
    duration = samples.get("maintwatch_http_probe_duration_seconds", target="app")
    assert duration is not None
    assert duration > 0
    assert logs == []


async def test_server_error_fails(context: Context, server: str) -> None:
    samples, logs = await probe(context, f"{server}/fail")
    assert samples.get("maintwatch_http_probe_success") == 0
    assert samples.get("maintwatch_http_probe_status_code") == 500
    assert logs[0]["event"] == "http_probe_failed"
    assert logs[0]["reason"] == "status 500 not in 2xx"


async def test_allowed_status_codes(context: Context, server: str) -> None:
    samples, _ = await probe(context, f"{server}/fail", valid_status_codes=[200, 500])
    assert samples.get("maintwatch_http_probe_success") == 1


async def test_slow_past_timeout(context: Context, server: str) -> None:
    samples, logs = await probe(context, f"{server}/slow", timeout="0.5s")
    assert samples.get("maintwatch_http_probe_success") == 0
    assert samples.get("maintwatch_http_probe_status_code") == 0
    assert logs[0]["reason"] == "no complete answer within 0.45s"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"body_regex": "healthy"}, None),
        ({"body_regex": "^database: (ok|up)$"}, "body does not match '^database: (ok|up)$'"),
    ],
)
async def test_body_regex(
    context: Context, server: str, fields: dict[str, Any], reason: str | None
) -> None:
    samples, logs = await probe(context, f"{server}/ok", **fields)
    assert samples.get("maintwatch_http_probe_success") == (1 if reason is None else 0)
    assert [e["reason"] for e in logs] == ([reason] if reason else [])


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("status", "ok", None),
        ("checks.0.db", True, None),
        ("checks.1.queue", 1, None),
        ("checks.1.queue", True, "JSON field checks.1.queue is 1, expected true"),
        ("status", "down", 'JSON field status is "ok", expected "down"'),
        ("checks.5.db", True, "JSON field checks.5.db is missing"),
    ],
)
async def test_json_field(
    context: Context, server: str, path: str, value: Any, reason: str | None
) -> None:
    samples, logs = await probe(context, f"{server}/json", json_field=path, json_value=value)
    assert samples.get("maintwatch_http_probe_success") == (1 if reason is None else 0)
    assert [e["reason"] for e in logs] == ([reason] if reason else [])


async def test_json_field_on_non_json_body(context: Context, server: str) -> None:
    _, logs = await probe(context, f"{server}/ok", json_field="status", json_value="ok")
    assert logs[0]["reason"] == "body is not JSON"


async def test_method_and_headers_with_secret_file(
    context: Context, server: str, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    token.write_text("Bearer s3cret\n")
    samples, _ = await probe(
        context,
        f"{server}/auth",
        method="POST",
        headers={"X-Probe": "maintwatch"},
        header_files={"Authorization": str(token)},
        body_regex="^POST maintwatch$",
    )
    assert samples.get("maintwatch_http_probe_success") == 1
    unauthenticated, _ = await probe(context, f"{server}/auth")
    assert unauthenticated.get("maintwatch_http_probe_status_code") == 401


async def test_redirects(context: Context, server: str) -> None:
    followed, _ = await probe(context, f"{server}/moved")
    assert followed.get("maintwatch_http_probe_status_code") == 200
    kept, _ = await probe(context, f"{server}/moved", follow_redirects=False)
    assert kept.get("maintwatch_http_probe_status_code") == 302
    assert kept.get("maintwatch_http_probe_success") == 0


async def test_untrusted_tls_fails_with_reason(context: Context, tls_server: str) -> None:
    samples, logs = await probe(context, f"{tls_server}/ok")
    assert samples.get("maintwatch_http_probe_success") == 0
    assert samples.get("maintwatch_http_probe_status_code") == 0
    assert logs[0]["reason"].startswith("TLS: ")
    assert "unable to get local issuer certificate" in logs[0]["reason"]


async def test_tls_with_ca_file(context: Context, tls_server: str, pki: Pki) -> None:
    samples, _ = await probe(context, f"{tls_server}/ok", ca_file=str(pki.root_file()))
    assert samples.get("maintwatch_http_probe_success") == 1


async def test_refused_and_log_once(context: Context) -> None:
    port = free_port()
    http = collector(context, f"http://probe:s3cret@127.0.0.1:{port}/health")
    with capture_logs() as logs:
        for _ in range(3):
            samples = await refresh(http)
    assert samples.get("maintwatch_http_probe_success") == 0
    assert [e["event"] for e in logs] == ["http_probe_failed"]
    assert logs[0]["reason"].startswith("ClientConnectorError: ")
    assert logs[0]["url"] == f"http://127.0.0.1:{port}/health"  # credentials never logged


async def test_recovery_is_logged(context: Context, server: str) -> None:
    http = collector(context, f"{server}/fail")
    with capture_logs() as logs:
        await refresh(http)
        http.config = http.config.model_copy(update={"url": f"{server}/ok"})
        await refresh(http)
    assert [e["event"] for e in logs] == ["http_probe_failed", "http_probe_recovered"]


async def test_promtool_accepts_output(context: Context, server: str, promtool: str) -> None:
    samples, _ = await probe(context, f"{server}/ok")
    promtool_check(promtool, samples.text())


async def test_runtime_keeps_collector_up_on_probe_failure(context: Context, server: str) -> None:
    runtime = Runtime(context.logger)
    try:
        await runtime.apply(
            [
                (collector(context, f"{server}/fail"), 60.0, 5.0),
                # No instance timeout: the runtime's effective 0.3 s bounds the probe.
                (HttpCollector(HttpConfig(name="slow", url=f"{server}/slow"), context), 60.0, 0.3),
            ]
        )
        async with asyncio.timeout(10):
            await runtime.wait_ready()
        samples = Samples(runtime.families())
    finally:
        await runtime.close()
    assert samples.get("maintwatch_collector_up", collector="http", name="app") == 1
    assert samples.get("maintwatch_http_probe_success", target="app") == 0
    # The probe gives up before the runtime would cancel it, so the failure is a probe result.
    assert samples.get("maintwatch_collector_up", collector="http", name="slow") == 1
    assert samples.get("maintwatch_http_probe_success", target="slow") == 0


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("{name: a}", "http[0].url: required field is missing"),
        ("{name: a, url: 'ftp://x'}", "http[0].url: must match the pattern"),
        ("{name: a, url: 'http://x', method: BREW}", "http[0].method: expected one of:"),
        ("{name: a, url: 'http://x', valid_status_codes: [700]}", "status codes must be 100-599"),
        ("{name: a, url: 'http://x', body_regex: '('}", "invalid regular expression"),
        ("{name: a, url: 'http://x', json_field: status}", "json_field and json_value go together"),
        (
            "{name: a, url: 'http://x', header_files: {Authorization: /nonexistent/token}}",
            "http[0].header_files.Authorization: cannot read secret file",
        ),
    ],
)
def test_config_errors_are_located(item: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(f"http:\n  - {item}\n", "x.yml")
    [problem] = caught.value.problems
    assert problem.startswith("x.yml: http[0]")
    assert message in problem


@pytest.fixture
async def named_tls_server(pki: Pki) -> AsyncIterator[tuple[int, list[str | None]]]:
    """Serve HTTPS for `app.example.test` only; yield the port and the SNI names received."""
    seen: list[str | None] = []
    context = pki.server_context(pki.leaf("app.example.test"))

    def sni(_: ssl.SSLObject, name: str | None, __: ssl.SSLContext) -> None:
        seen.append(name)

    context.sni_callback = sni
    async for url in _serve(context):
        yield URL(url).port or 0, seen


async def test_server_name_sets_host_sni_and_the_checked_name(
    context: Context, named_tls_server: tuple[int, list[str | None]], pki: Pki
) -> None:
    port, sni = named_tls_server
    samples, logs = await probe(
        context,
        f"https://127.0.0.1:{port}/host",
        server_name="app.example.test",
        ca_file=str(pki.root_file()),
        body_regex=rf"^host=app\.example\.test:{port}$",
    )
    assert logs == []
    assert samples.get("maintwatch_http_probe_success") == 1
    assert sni == ["app.example.test"]


async def test_server_name_is_checked_against_the_certificate(
    context: Context, named_tls_server: tuple[int, list[str | None]], pki: Pki
) -> None:
    port, _ = named_tls_server
    samples, logs = await probe(
        context,
        f"https://127.0.0.1:{port}/host",
        server_name="other.example.test",
        ca_file=str(pki.root_file()),
    )
    assert samples.get("maintwatch_http_probe_success") == 0
    assert logs[0]["reason"] == (
        "TLS: Hostname mismatch, certificate is not valid for 'other.example.test'."
    )


async def test_resolve_reaches_a_name_dns_does_not_know(
    context: Context, named_tls_server: tuple[int, list[str | None]], pki: Pki
) -> None:
    port, sni = named_tls_server
    samples, logs = await probe(
        context,
        f"https://app.example.test:{port}/host",
        resolve="127.0.0.1",
        ca_file=str(pki.root_file()),
        body_regex=rf"^host=app\.example\.test:{port}$",
    )
    assert logs == []
    assert samples.get("maintwatch_http_probe_success") == 1
    assert sni == ["app.example.test"]


async def test_server_name_over_plain_http(context: Context, server: str) -> None:
    samples, logs = await probe(
        context,
        f"{server}/host",
        server_name="app.example.test",
        body_regex=rf"^host=app\.example\.test:{URL(server).port}$",
    )
    assert logs == []
    assert samples.get("maintwatch_http_probe_success") == 1


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"resolve": "app.internal"}, "'app.internal' is not an IP address"),
        ({"server_name": "app example"}, "String should match pattern"),
    ],
)
def test_name_options_are_validated(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpConfig.model_validate({"name": "app", "url": "https://10.0.0.5/health", **fields})
