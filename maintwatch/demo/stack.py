"""Prometheus and Alertmanager configs for the demo, and rules rendered with short `for`s.

The rules are the project's own: `rules/thresholds.yaml` is copied with every `for` shortened
and rendered by the rules generator (`python -m rules generate --thresholds … --out …`) into the
demo directory, so nothing under `rules/` changes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from maintwatch.demo.alertmanager import recommended
from maintwatch.demo.configs import write_yaml
from maintwatch.demo.settings import REPO, DemoSettings

DEMO_FOR = "10s"  # long enough to see `pending` in Prometheus, short enough for a 1-minute demo
# The alerts the demo world is built to trigger, and the watchers' own. Trend alerts
# (predict_linear, deriv, burn rates) keep their production `for`: over the first minutes of
# data they would fire on noise.
DEMO_ALERTS = frozenset(
    {
        "BackupTooOld",
        "BackupVerifyFailed",
        "BackupDrillFailed",
        "TLSCertificateExpiringSoon",
        "AppMaintenanceModeTooLong",
        "AppErrorRateHigh",
        "QueueBacklogHigh",
        "QueueOldestJobTooOld",
        "QueueWorkersDown",
        "MaintwatchCollectorDown",
        "MaintwatchExporterDown",
    }
)
# A 1-minute window lets the error rate show within a minute of start instead of five.
DEMO_PARAMS = {"AppErrorRateHigh": {"window": "1m"}}
# The Watchdog has no `for`, so it fires at Prometheus' first rule evaluation; Prometheus 2.42
# drops what it sends before its Alertmanager discovery first syncs (up to 5 s after start,
# `prometheus_notifications_dropped_total`). Held this long, the first one is delivered.
WATCHDOG_FOR = {"Watchdog": DEMO_FOR}
INTERVAL = "5s"


class RenderFailed(Exception):
    """The rules generator rejected the demo thresholds; the message holds its output."""


def _shorten(settings: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    out = dict(settings)
    if params:
        out["params"] = {**out.get("params", {}), **params}
    if out.get("for") is not None:
        out["for"] = DEMO_FOR
    if out.get("tiers"):
        out["tiers"] = [
            {**tier, "for": DEMO_FOR} if "for" in tier else tier for tier in out["tiers"]
        ]
    return out


def demo_thresholds(source: dict[str, Any]) -> dict[str, Any]:
    """Return the thresholds document with the demo alerts' `for` set to DEMO_FOR (pure).

    The relative `runbook_base_url` stays: the receiver resolves it against its external URL
    and serves the runbooks itself, so every message carries a link a phone can open.
    """
    alerts = {
        name: _shorten(s, DEMO_PARAMS.get(name, {})) if name in DEMO_ALERTS else s
        for name, s in source["alerts"].items()
    }
    for name, hold in WATCHDOG_FOR.items():
        alerts[name] = {**alerts[name], "for": hold}
    return {**source, "alerts": alerts}


def render_rules(thresholds_out: Path, rules_out: Path) -> Path:
    """Write the demo thresholds and render the rule files with the project's generator."""
    source = yaml.safe_load((REPO / "rules" / "thresholds.yaml").read_text(encoding="utf-8"))
    write_yaml(thresholds_out, demo_thresholds(source))
    command = [sys.executable, "-m", "rules", "generate"]
    command += ["--thresholds", str(thresholds_out), "--out", str(rules_out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RenderFailed(f"{' '.join(command)}: {done.stdout}{done.stderr}".strip())
    return rules_out


def prometheus_config(settings: DemoSettings) -> dict[str, Any]:
    """Return Prometheus' config: scrape exporter and receiver, load the demo rules."""
    host, ports = settings.host, settings.ports
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
        "rule_files": [str(settings.layout.rules / "*.rules.yml")],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"{host}:{ports['alertmanager']}"]}]}
            ]
        },
        "scrape_configs": [
            {
                "job_name": "maintwatch",
                "static_configs": [{"targets": [f"{host}:{ports['exporter']}"]}],
            },
            {
                "job_name": "maintwatch-receiver",
                "static_configs": [{"targets": [f"{host}:{ports['receiver']}"]}],
            },
            {
                "job_name": "prometheus",
                "static_configs": [{"targets": [f"{host}:{ports['prometheus']}"]}],
            },
        ],
    }


def alertmanager_config(settings: DemoSettings, token_file: Path) -> dict[str, Any]:
    """Return the recommended Alertmanager config with the demo's receiver and quick timers."""
    timers = {"group_wait": "5s", "group_interval": "30s", "repeat_interval": "4h"}
    return recommended(settings.url("receiver"), str(token_file), timers)
