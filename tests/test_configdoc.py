"""docs/*/config-reference.md are generated from the config models and must match them."""

from __future__ import annotations

from pathlib import Path

import pytest

from maintwatch.configdoc import model_for, render, rows

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("program", ["exporter", "receiver"])
def test_reference_matches_the_code(program: str) -> None:
    path = REPO / "docs" / program / "config-reference.md"
    expected = render(program, model_for(program))
    assert path.read_text() == expected, (
        f"{path} is stale: python -m maintwatch.configdoc {program} > {path.relative_to(REPO)}"
    )


def test_reference_lists_every_section_and_channel_field() -> None:
    model = model_for("receiver")
    paths = {(row.path, row.when) for row in rows(model)}
    for section in ("links", "inbound", "web", "schedules", "digest", "watchdog", "escalation"):
        assert (section, "") in paths
    assert ("channels[].host", "type: email") in paths
    assert ("channels[].auth_token_file", "type: sms") in paths
    durations = [row for row in rows(model) if row.path == "delivery.send_timeout"]
    assert [(r.kind, r.default) for r in durations] == [("duration", "`30s`")]
