"""Configs of the e2e stack: rules rendered with short `for`s, Prometheus, Alertmanager, receiver.

The rules are the project's own, rendered by the rules generator from an override thresholds
file (the demo's approach and code: `maintwatch.demo.stack.demo_thresholds`), never edited.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from maintwatch.demo.alertmanager import recommended
from maintwatch.demo.settings import REPO
from maintwatch.demo.stack import demo_thresholds
from tests.e2e._fakes import TWILIO_SID

E2E_FOR = "2s"
# The alerts the scenarios drive, on top of the demo's shortened set.
E2E_ALERTS = ("BackupTooOld", "BackupSizeJumped", "TLSCertificateExpiringSoon")
LEVEL2_AFTER = "3s"  # level 2 of the on-call policy (1 h in production), scaled for the test
LEVEL3_AFTER = "10m"  # level 3 exists so an ack visibly cancels a pending step


@dataclass(frozen=True)
class Person:
    """Someone on the on-call policy."""

    id: str
    email: str
    phone: str


ANN = Person("ann", "ann@example.org", "+15550100001")  # level 1
BOB = Person("bob", "bob@example.org", "+15550100002")  # level 2
CAROL = Person("carol", "carol@example.org", "+15550100003")  # level 3
TEAM_MAIL = "ops@example.org"  # the mail channel's own address: digests go here


def write_yaml(path: Path, data: Mapping[str, Any]) -> Path:
    """Write `data` as YAML."""
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False), encoding="utf-8")
    return path


def _retimed(settings: Mapping[str, Any], duration: str) -> dict[str, Any]:
    out = dict(settings)
    if out.get("for") is not None:
        out["for"] = duration
    if out.get("tiers"):
        out["tiers"] = [{**t, "for": duration} if "for" in t else t for t in out["tiers"]]
    return out


def render_rules(root: Path) -> Path:
    """Write the e2e thresholds and render the rule files with `python -m rules generate`."""
    source = yaml.safe_load((REPO / "rules" / "thresholds.yaml").read_text(encoding="utf-8"))
    doc = demo_thresholds(source)
    doc["alerts"] = {
        name: _retimed(s, E2E_FOR) if name in E2E_ALERTS else s for name, s in doc["alerts"].items()
    }
    thresholds = write_yaml(root / "thresholds.yaml", doc)
    out = root / "rules"
    command = [sys.executable, "-m", "rules", "generate", "--thresholds", str(thresholds)]
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}{done.stderr}"
    return out


def prometheus_config(
    rules: Path, exporter: str, receiver: str, alertmanagers: list[str]
) -> dict[str, Any]:
    """Scrape exporter and receiver, evaluate the rules every second; alert both Alertmanagers."""
    # The rules expect these job names (the receiver's own alerts fire on a missing target).
    jobs = {"maintwatch": exporter, "maintwatch-receiver": receiver}
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules / "*.rules.yml")],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": alertmanagers}]}]},
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in jobs.items()
        ],
    }


def alertmanager_config(webhook_url: str, token_file: Path) -> dict[str, Any]:
    """The recommended config (examples/alertmanager.yml) with second-scale grouping timers."""
    timers = {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
    return recommended(webhook_url, str(token_file), timers)


@dataclass(frozen=True)
class ReceiverPlan:
    """Where the receiver listens and what it talks to."""

    root: Path
    port: int
    smtp_port: int
    twilio_url: str
    chat_url: str
    alertmanager_url: str  # the first Alertmanager: acks silence alerts there


def _person(p: Person) -> dict[str, Any]:
    return {"id": p.id, "name": p.id.title(), "email": p.email, "phone": p.phone}


def _channels(plan: ReceiverPlan) -> list[dict[str, Any]]:
    return [
        {
            "name": "mail",
            "type": "email",
            "host": "127.0.0.1",
            "port": plan.smtp_port,
            "tls": "none",
            "from": "maintwatch <pager@example.org>",
            "to": [TEAM_MAIL],
            "timeout": "10s",
        },
        {
            "name": "sms",
            "type": "sms",
            "account_sid": TWILIO_SID,
            "auth_token_file": str(plan.root / "twilio_token"),
            "from": "+15005550006",
            "to": ["+15550100999"],
            "api_base_url": plan.twilio_url,
            "timeout": "10s",
        },
        {"name": "chat", "type": "slack", "webhook_url": plan.chat_url, "timeout": "10s"},
    ]


def _policy() -> dict[str, Any]:
    step = {"via": ["mail", "sms"]}
    return {
        "name": "oncall",
        "steps": [
            {"after": "0s", "notify": [f"person:{ANN.id}"], **step},
            {"after": LEVEL2_AFTER, "notify": [f"person:{BOB.id}"], **step},
            {"after": LEVEL3_AFTER, "notify": [f"person:{CAROL.id}"], **step},
        ],
    }


def receiver_config(plan: ReceiverPlan, digest_at: str | None = None) -> dict[str, Any]:
    """Return the receiver config; `digest_at` (HH:MM UTC) turns the daily digest on."""
    secrets = {name: str(plan.root / name) for name in ("webhook_token", "api_token", "links")}
    digest: dict[str, Any] = {"enabled": False, "poll_interval": "1s"}
    if digest_at is not None:
        digest = {"enabled": True, "at": digest_at, "timezone": "UTC", "poll_interval": "1s"}
    return {
        "listen": f"127.0.0.1:{plan.port}",
        "external_url": f"http://127.0.0.1:{plan.port}",
        "store": {"type": "sqlite", "path": str(plan.root / "receiver.db")},
        "webhook": {"auth": "bearer", "token_file": secrets["webhook_token"]},
        "api": {"token_file": secrets["api_token"]},
        "links": {"secret_file": secrets["links"]},
        "web": {"secure_cookies": False},
        "channels": _channels(plan),
        "people": [_person(p) for p in (ANN, BOB, CAROL)],
        "policies": [_policy()],
        "routes": [
            {"name": "info", "matchers": ['severity="info"'], "channels": ["mail"]},
            {"name": "critical", "matchers": ['severity="critical"'], "policy": "oncall"},
            {
                "name": "warning",
                "matchers": ['severity="warning"'],
                "channels": ["chat"],
                "policy": "oncall",
            },
        ],
        "default_route": {"channels": ["chat"]},
        "delivery": {"backoff_initial": "1s", "backoff_max": "5s", "poll_interval": "1s"},
        "escalation": {"poll_interval": "1s"},
        "digest": digest,
        "alertmanager": {"url": plan.alertmanager_url, "interval": "2s"},
        # The recommended Alertmanager config sends the Watchdog here: a heartbeat, no incident.
        "watchdog": {"expect_every": "10m", "notify": ["channel:mail"]},
    }
