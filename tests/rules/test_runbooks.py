"""Every alert has a runbook with the sections an on-call engineer needs, and no orphans."""

from __future__ import annotations

import re

from tests.rules._rules_helpers import RUNBOOKS, alert_names

SECTIONS = ["Meaning", "Impact", "Confirm", "Fix", "Escalate"]


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## +(.+)$", text, flags=re.MULTILINE)
    return {parts[i].strip(): parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def test_every_alert_has_a_runbook_with_every_section() -> None:
    for name in sorted(alert_names()):
        path = RUNBOOKS / f"{name}.md"
        assert path.is_file(), f"missing runbook {path}"
        text = path.read_text(encoding="utf-8")
        assert text.startswith(f"# {name}\n"), path
        sections = _sections(text)
        assert list(sections) == SECTIONS, f"{path}: sections {list(sections)}"
        for title, body in sections.items():
            assert len(body) > 20, f"{path}: section {title} is empty"
        assert "`" in sections["Confirm"], f"{path}: Confirm needs a command to run"


def test_no_runbook_without_an_alert() -> None:
    orphans = {p.stem for p in RUNBOOKS.glob("*.md")} - alert_names() - {"README"}
    assert not orphans
