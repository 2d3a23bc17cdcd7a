"""Docs that show how to do something are run as written against the code."""

from __future__ import annotations

import contextlib
import io
import re
import time
from pathlib import Path

from receiver.ack.links import derive, verify

REPO = Path(__file__).resolve().parents[1]


def test_hand_made_ack_link_from_acknowledge_md_verifies(tmp_path: Path) -> None:
    text = (REPO / "docs" / "receiver" / "acknowledge.md").read_text()
    [recipe] = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    secret = tmp_path / "links-secret"
    secret.write_text("  the-links-secret\n")
    recipe = recipe.replace("/etc/maintwatch/links-secret", str(secret))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(recipe, {})  # noqa: S102 - the documentation's own example, run as written
    url = out.getvalue().strip()
    assert url.startswith("https://oncall.example.org/ack/")
    claim = verify(derive(b"the-links-secret", "links"), url.rsplit("/", 1)[1], time.time())
    assert (claim.incident_id, claim.action, claim.person) == (42, "ack", "ann")
