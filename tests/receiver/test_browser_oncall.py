"""What on-call sees in real Chromium at desktop (1400×1000) and phone (390×844) sizes: no
horizontal scrolling, Ack reachable, the value and runbook visible, and each alert's graph
drawn from a real Prometheus holding the alert's series. Screenshots go to the artifacts."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.conftest import free_port
from tests.receiver._ack_helpers import PASSWORD, ack_config, serve
from tests.receiver._helpers import Running, alert, payload, register_script, store_yaml
from tests.receiver._prometheus_helpers import generator_url, prometheus  # noqa: F401
from tests.receiver.test_browser import ARTIFACTS, browser  # noqa: F401 - a fixture, by name

VALUE = "newest backup is 1d 4h old, expected every 1d 2h"
SIZES = [(1400, 1000), (390, 844)]


def _iso(seconds_ago: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds_ago))


def incidents(prometheus_url: str) -> list[dict[str, Any]]:
    """Return a critical backup incident (graphable, one long label value) and a warning one."""
    backup = alert(
        "b0",
        starts=_iso(2 * 3600),
        alertname="BackupTooOld",
        job="maintwatch",
        instance="127.0.0.1:9839",
        backup="tongacp_db",
        path="/var/backups/" + "tongacp_database_dump_directory_" * 8,
    )
    backup["annotations"] = {
        "summary": "The newest backup of a set is older than the set's expected cadence.",
        "description": VALUE,
        "runbook_url": "docs/runbooks/BackupTooOld.md",
    }
    backup["generatorURL"] = generator_url(prometheus_url)
    first = payload(backup, group='{}:{alertname="BackupTooOld"}', alertname="BackupTooOld")
    first["commonLabels"] = dict(backup["labels"])
    first["groupLabels"] = {"alertname": "BackupTooOld"}
    queue = alert(
        "q0", starts=_iso(600), severity="warning", alertname="QueueBacklogHigh", queue="default"
    )
    queue["annotations"]["description"] = "12 840 jobs pending, above 1 000"
    second = payload(queue, group='{}:{alertname="QueueBacklogHigh"}', severity="warning")
    second["groupLabels"] = {"alertname": "QueueBacklogHigh"}
    second["commonLabels"]["alertname"] = "QueueBacklogHigh"
    return [first, second]


@asynccontextmanager
async def holding(tmp_path: Path, prometheus_url: str) -> AsyncIterator[Running]:
    """Serve a receiver holding the incidents, reachable where the browser looks."""
    port = free_port()
    text = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), f"http://127.0.0.1:{port}")
    async with serve(text, port=port) as running_rx:
        for body in incidents(prometheus_url):
            assert (await running_rx.post(json.dumps(body).encode())).status == 200
        yield running_rx


@pytest.fixture
async def rx(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    prometheus: str,  # noqa: F811 - the fixture
) -> AsyncIterator[Running]:
    """Serve a receiver whose alerts name the real Prometheus."""
    register_script(monkeypatch)
    async with holding(tmp_path, prometheus) as running_rx:
        yield running_rx


async def _open(browser: Browser, size: tuple[int, int]) -> tuple[Page, list[str]]:  # noqa: F811
    context = await browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    # CSP violations and script errors show as console errors; a missing favicon is not ours.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and "Failed to load resource" not in m.text
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico")
            else None
        ),
    )
    return page, problems


async def _no_horizontal_scroll(page: Page) -> None:
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"page is {widths[0]} px wide in a {widths[1]} px window"


async def _within_width(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    width = await page.evaluate("window.innerWidth")
    assert box is not None, selector
    assert box["x"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= width, (selector, box)


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_oncall_sees_value_runbook_graph_and_can_ack(
    browser: Browser,  # noqa: F811
    rx: Running,
    size: tuple[int, int],
) -> None:
    page, problems = await _open(browser, size)
    tag = f"{size[0]}x{size[1]}"
    try:
        await page.goto(f"{rx.url}/")
        await expect(page.locator("#how")).to_contain_text("API token")
        await page.fill("input[name=name]", "alice")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("#login")
        card = page.locator("#incident-1")
        await expect(card.locator("p.description")).to_have_text(VALUE)
        runbook = card.locator("a.runbook")
        await expect(runbook).to_be_visible()
        href = await runbook.evaluate("a => a.href")
        assert href == f"{rx.url}/docs/runbooks/BackupTooOld.md"
        await expect(page.locator("#ack-1")).to_be_visible()
        await _within_width(page, "#ack-1")
        await _within_width(page, "#resolve-1")
        await _no_horizontal_scroll(page)
        await _shot(page, f"oncall-list-{tag}")

        await page.click("#incident-1 h3 a")
        graph = page.locator("svg.graph").first
        await expect(graph).to_be_visible()
        assert await graph.locator("path.value").get_attribute("d")
        assert await graph.locator("path.threshold").get_attribute("d")
        assert await graph.locator("rect.firing").count() == 1
        await _within_width(page, "svg.graph")
        await _within_width(page, "#ack-1")
        await _no_horizontal_scroll(page)
        await _shot(page, f"oncall-incident-{tag}")

        await page.click("#ack-1")
        await expect(page.locator("#state")).to_have_text("acknowledged")
        await expect(page.locator(".facts .state")).to_contain_text("acknowledged by alice")
        await page.click("a.runbook")
        await expect(page.locator("h1")).to_have_text("BackupTooOld")
        await _no_horizontal_scroll(page)
    except BaseException:
        await _shot(page, f"oncall-failed-{tag}")
        raise
    finally:
        await page.context.close()
    assert not problems, problems


async def _log_in(page: Page, url: str) -> None:
    await page.goto(f"{url}/")
    await page.fill("input[name=name]", "alice")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login")


async def test_prometheus_away_leaves_the_page_working(
    browser: Browser,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    register_script(monkeypatch)
    away = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    async with holding(tmp_path, away) as running_rx:
        page, problems = await _open(browser, SIZES[1])
        try:
            await _log_in(page, running_rx.url)
            await page.goto(f"{running_rx.url}/incidents/1")
            await expect(page.locator("p.note")).to_have_text(
                "No graph: Prometheus cannot be reached (ClientConnectorError)."
            )
            await expect(page.locator("p.description").first).to_have_text(VALUE)
            await _within_width(page, "#ack-1")
            await _no_horizontal_scroll(page)
            await _shot(page, "oncall-prometheus-away-390x844")
            await page.click("#ack-1")
            await expect(page.locator("#state")).to_have_text("acknowledged")
        except BaseException:
            await _shot(page, "oncall-failed-prometheus-away")
            raise
        finally:
            await page.context.close()
    assert not problems, problems
