"""HTTP endpoints: exposition formats, gzip, readiness, index page, promtool-clean output."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from aiohttp import web

from exporter.collectors.base import Context
from exporter.runtime import Runtime
from exporter.server import make_app
from tests.conftest import free_port
from tests.exporter._backups_helpers import make_collector
from tests.exporter._fake_collector import FakeCollector, FakeConfig
from tests.exporter.conftest import promtool_check


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Runtime, FakeCollector]]:
    rt = Runtime(structlog.get_logger())
    # model_construct skips the name pattern so the page's escaping is what is tested.
    config = FakeConfig.model_construct(
        name="x<y>", value=5, expected=42, interval=None, timeout=None
    )
    collector = FakeCollector(config, Context())
    await rt.apply([(collector, 60, 5)])
    runner = web.AppRunner(make_app(rt))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", rt, collector
    await runner.cleanup()
    await rt.close()


async def test_metrics_text_format(served: tuple[str, Runtime, FakeCollector]) -> None:
    url, rt, _ = served
    await rt.wait_ready()
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        body = await resp.text()
    assert 'maintwatch_fake_value{fake="x<y>"} 5.0' in body
    assert "# TYPE maintwatch_collector_errors_total counter" in body


async def test_metrics_openmetrics_and_gzip(served: tuple[str, Runtime, FakeCollector]) -> None:
    url, rt, _ = served
    await rt.wait_ready()
    headers = {
        "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
        "Accept-Encoding": "gzip",
    }
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.get(f"{url}/metrics", headers=headers) as resp,
    ):
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        assert resp.headers["Content-Encoding"] == "gzip"
        body = gzip.decompress(await resp.read()).decode()
    assert body.endswith("# EOF\n")
    assert "maintwatch_collector_errors_total" in body


async def test_ready_health_and_index(served: tuple[str, Runtime, FakeCollector]) -> None:
    url, rt, _ = served
    await rt.wait_ready()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/-/healthy") as resp:
            assert resp.status == 200
        async with http.get(f"{url}/-/ready") as resp:
            assert resp.status == 200
        async with http.get(f"{url}/") as resp:
            page = await resp.text()
    assert "x&lt;y&gt;" in page
    assert "<y>" not in page


async def test_scrape_does_not_wait_for_a_hanging_collector(
    served: tuple[str, Runtime, FakeCollector],
) -> None:
    url, rt, collector = served
    await rt.wait_ready()
    collector.mode = "hang"
    refresh = __import__("asyncio").create_task(rt.refresh_once(rt.states()[0]))
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        assert resp.status == 200
        assert "maintwatch_fake_value" in await resp.text()
    refresh.cancel()


async def test_exposition_passes_promtool(
    served: tuple[str, Runtime, FakeCollector], promtool: str
) -> None:
    url, rt, _ = served
    await rt.wait_ready()
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        promtool_check(promtool, await resp.text())


async def test_index_says_where_backup_times_come_from(tmp_path: Path) -> None:
    rt = Runtime(structlog.get_logger())
    collector = make_collector(
        Context(), directory=str(tmp_path), timestamp="%Y%m%d*.sql", timezone="UTC"
    )
    await rt.apply([(collector, 60, 5)])
    runner = web.AppRunner(make_app(rt))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as resp:
            page = await resp.text()
    finally:
        await runner.cleanup()
        await rt.close()
    assert f"{tmp_path}/*.sql: date from the name to the day; time within it from the mtime" in page
