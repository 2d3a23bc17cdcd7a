"""The incidents page in a real browser (Debian chromium, headless, via Playwright's async API)."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from receiver.web.state import WEB
from tests.conftest import free_port, require_tool
from tests.receiver._ack_helpers import PASSWORD, ack_config, incident, serve
from tests.receiver._helpers import Running, fixture_bytes, register_script, store_yaml

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", "/tmp/maintwatch-artifacts"))


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Launch Debian's chromium headless."""
    path = require_tool("chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=path, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def rx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Running]:
    """Serve a receiver whose external URL is where the browser reaches it."""
    register_script(monkeypatch)
    port = free_port()
    text = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), f"http://127.0.0.1:{port}")
    async with serve(text, port=port) as running:
        yield running


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """Open a page; fail on any script error the page raised."""
    context = await browser.new_context()
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield opened
    finally:
        await context.close()
    assert not errors, errors


@asynccontextmanager
async def screenshot_on_failure(page: Page, name: str) -> AsyncIterator[None]:
    """Save a screenshot to the artifacts dir when the block fails, then re-raise."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise


def hostile_payload() -> bytes:
    """Return the fixture payload with `<script>` in a label, a group of its own."""
    body = json.loads(fixture_bytes("firing-single.json"))
    evil = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
    body["groupKey"] = '{}:{alertname="Evil"}'
    body["groupLabels"] = {"alertname": "Evil"}
    alert = body["alerts"][0]
    alert["fingerprint"] = "e0e0e0e0e0e0e0e0"
    alert["labels"] = {**alert["labels"], "alertname": "Evil", "evil": evil}
    body["commonLabels"] = dict(alert["labels"])
    return json.dumps(body).encode()


async def test_ack_from_the_page(rx: Running, page: Page) -> None:
    async with screenshot_on_failure(page, "test_ack_from_the_page"):
        assert (await rx.post(fixture_bytes("firing-single.json"))).status == 200
        assert (await rx.post(hostile_payload())).status == 200
        await page.goto(f"{rx.url}/")
        await expect(page).to_have_url(f"{rx.url}/login?next=/")
        await page.fill("input[name=name]", "alice")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("#login")
        row = page.locator("#incident-1")
        await expect(row.locator(".state")).to_have_text(re.compile(r"^triggered \S+ ago$"))
        await expect(row).to_contain_text("BackupTooOld")
        await expect(page.locator("#incident-2")).to_contain_text(
            "<script>window.__pwned=1</script>"
        )
        assert await page.evaluate("typeof window.__pwned") == "undefined"
        await page.click("#ack-1")
        await expect(row.locator(".state")).to_have_text(
            re.compile(r"^acknowledged by alice \S+ ago$")
        )
        assert (await incident(rx, 1))["state"] == "acknowledged"
        await page.click("#incident-1 a[href='/incidents/1']")
        await expect(page.locator("#state")).to_have_text("acknowledged")
        await page.click("#resolve-1")
        await expect(page.locator("#state")).to_have_text("resolved")
        assert await page.evaluate("typeof window.__pwned") == "undefined"


async def test_signed_link_confirm_in_browser(rx: Running, page: Page) -> None:
    async with screenshot_on_failure(page, "test_signed_link_confirm_in_browser"):
        assert (await rx.post(fixture_bytes("firing-single.json"))).status == 200
        maker = rx.app[WEB].maker
        assert maker is not None
        url = maker.url(1, "ack", "bob", time.time())
        await page.goto(url)
        await expect(page.locator("h1")).to_have_text("Acknowledge incident #1?")
        assert (await incident(rx, 1))["state"] == "triggered"
        await page.click("#confirm")
        await expect(page.locator("#message")).to_have_text("Incident 1 is acknowledged.")
        assert (await incident(rx, 1))["acked_by"] == "bob"
        await page.goto(url)
        await page.click("#confirm")
        await expect(page.locator("#message")).to_contain_text("used already")
