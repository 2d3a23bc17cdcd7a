"""Docs that show how to do something are run as written against the code."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import time
from pathlib import Path

import yaml

from maintwatch.demo.alertmanager import recommended
from receiver.ack.links import derive, verify
from tests.conftest import require_tool

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


def _amtool(*args: str) -> str:
    done = subprocess.run(
        [require_tool("amtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_route_around_the_receiver_from_alertmanager_md_takes_every_receiver_alert(
    tmp_path: Path,
) -> None:
    text = (REPO / "docs" / "alertmanager.md").read_text()
    section = text.split("## Alerts about the receiver", 1)[1]
    [snippet] = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    documented = yaml.safe_load(snippet)
    token = tmp_path / "webhook-token"
    token.write_text("token\n")
    config = recommended("http://127.0.0.1:9840", str(token))
    config["route"]["routes"] = documented["route"]["routes"] + config["route"]["routes"]
    config["receivers"] += documented["receivers"]
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    _amtool("check-config", str(path))
    rules = yaml.safe_load((REPO / "rules" / "receiver.rules.yml").read_text())
    names = {rule["alert"] for rule in rules["groups"][0]["rules"]}
    assert "MaintwatchReceiverDown" in names
    for name in sorted(names):
        routed = _amtool("config", "routes", "test", f"--config.file={path}", f"alertname={name}")
        assert routed.split() == ["ops-mail"], name
    routed = _amtool("config", "routes", "test", f"--config.file={path}", "alertname=BackupTooOld")
    assert routed.split() == ["maintwatch"]
