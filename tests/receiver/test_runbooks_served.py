"""The receiver serves the project's runbooks at the path the rules' relative links name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receiver.web.render import CSP
from tests.receiver._ack_helpers import ack_config, serve
from tests.receiver._helpers import Running, register_script, store_yaml

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"


@pytest.fixture
async def rx(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Running]:
    """Serve a receiver."""
    register_script(monkeypatch)
    text = ack_config(tmp_path, store_yaml("sqlite", tmp_path, ""), "https://pager.example")
    async with serve(text) as running:
        yield running


async def test_every_runbook_is_served_as_html_without_login(rx: Running) -> None:
    names = sorted(p.stem for p in RUNBOOKS.glob("*.md"))
    assert "BackupTooOld" in names
    for name in names:
        async with rx.http.get(f"{rx.url}/docs/runbooks/{name}.md") as response:
            assert response.status == 200, name
            assert response.headers["Content-Type"].startswith("text/html")
            assert response.headers["Content-Security-Policy"] == CSP
            text = await response.text()
        assert f"<h1>{name}</h1>" in text
    async with rx.http.get(f"{rx.url}/docs/runbooks/") as response:
        index = await response.text()
    assert all(f'href="/docs/runbooks/{name}.md"' in index for name in names)


@pytest.mark.parametrize("name", ["Nope", "..%2Fconfig", "%2E%2E", "a.b"])
async def test_unknown_or_hostile_names_are_not_found(rx: Running, name: str) -> None:
    async with rx.http.get(f"{rx.url}/docs/runbooks/{name}.md") as response:
        assert response.status == 404
