"""promtool checks every rule file and runs every unit test; every alert has its cases."""

from __future__ import annotations

import subprocess
from collections import defaultdict

import yaml

from rules.catalogue import unknown_metrics
from tests.rules._rules_helpers import alert_names, alerting_rules, rule_files, unit_test_files


def test_promtool_check_rules(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, rule_files())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_promtool_test_rules(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", *map(str, unit_test_files())],
        capture_output=True,
        text=True,
        check=False,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_one_test_file_per_rule_group() -> None:
    groups = {p.name.removesuffix(".rules.yml") for p in rule_files()}
    tests = {p.name.removesuffix(".test.yml") for p in unit_test_files()}
    assert groups == tests
    for path in unit_test_files():
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] == [f"../{path.name.removesuffix('.test.yml')}.rules.yml"]


def _cases() -> tuple[dict[str, set[str]], dict[str, int]]:
    """Return, per alert, the severities seen firing, and how many silent cases it has."""
    firing: dict[str, set[str]] = defaultdict(set)
    silent: dict[str, int] = defaultdict(int)
    for path in unit_test_files():
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                name = case["alertname"]
                expected = case.get("exp_alerts") or []
                if not expected:
                    silent[name] += 1
                for alert in expected:
                    firing[name].add(alert["exp_labels"]["severity"])
                    assert set(alert["exp_annotations"]) == {
                        "summary",
                        "description",
                        "runbook_url",
                    }, f"{path.name}: {name}: assert every annotation"
    return firing, silent


def test_every_alert_and_tier_fires_and_stays_silent_in_a_test() -> None:
    firing, silent = _cases()
    tiers: dict[str, set[str]] = defaultdict(set)
    for rule in alerting_rules():
        tiers[rule["alert"]].add(rule["labels"]["severity"])
    for name, severities in tiers.items():
        assert severities <= firing[name], f"{name}: no firing case for {severities - firing[name]}"
        if name != "Watchdog":  # always fires by design: there is no "below" for it
            assert silent[name] > 0, f"{name}: no case where it stays silent"


def test_every_alert_is_well_formed() -> None:
    for rule in alerting_rules():
        name = rule["alert"]
        assert name[0].isupper(), name
        assert "_" not in name, name
        assert rule["labels"]["severity"] in {"critical", "warning", "info", "none"}
        notes = rule["annotations"]
        assert set(notes) == {"summary", "description", "runbook_url"}, name
        assert "{{" not in notes["summary"], name
        assert notes["summary"].endswith("."), name
        assert notes["runbook_url"].endswith(f"/{name}.md"), name
        assert not unknown_metrics(rule["expr"]), f"{name}: {unknown_metrics(rule['expr'])}"


def test_descriptions_show_the_value_humanized() -> None:
    for rule in alerting_rules():
        text = rule["annotations"]["description"]
        if "$value" in text and "$value }}" not in text:
            assert "humanize" in text, rule["alert"]


def test_alert_names_are_unique_per_severity() -> None:
    seen = set()
    for rule in alerting_rules():
        key = (rule["alert"], rule["labels"]["severity"], rule["labels"].get("slo_objective"))
        assert key not in seen, key
        seen.add(key)
    assert "Watchdog" in alert_names()
