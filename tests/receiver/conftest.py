"""Receiver fixtures many test files ask for by name: scripted channels, a fake clock, stores.

A test file that needs a different `rules` or `store` (another config, one backend only)
defines its own fixture of that name, which takes precedence over the one here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from receiver.store import IntakeRules, Store
from tests.receiver._helpers import (
    BASE_CONFIG,
    FakeClock,
    Script,
    opened_store,
    register_script,
    rules_for,
)


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Script:
    """Register the scripted test channels."""
    return register_script(monkeypatch)


@pytest.fixture
def clock() -> FakeClock:
    """Return a clock the test moves."""
    return FakeClock()


@pytest.fixture
def rules(script: Script) -> IntakeRules:
    """Return intake rules of the base config (sms is at-most-once)."""
    # The base config names the scripted channels, so they must be registered first.
    return rules_for(BASE_CONFIG + "external_url: https://rx.example/\n")


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, unique: str
) -> AsyncIterator[Store]:
    """Yield an opened store of each kind, in its own file or database."""
    async with opened_store(request.param, tmp_path, unique) as opened:
        yield opened
