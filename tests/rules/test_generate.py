"""The rule generator: up to date, overridable, and strict about its thresholds file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from maintwatch.configload import ConfigError
from rules.generate import render_files
from rules.model import load_thresholds
from rules.render import RenderError, with_selector
from tests.rules._rules_helpers import RULES, run_generate


def test_committed_rule_files_are_up_to_date() -> None:
    result = run_generate("--check")
    assert result.returncode == 0, result.stderr


def test_check_fails_on_a_hand_edited_or_stray_file(tmp_path: Path) -> None:
    for path in RULES.glob("*.rules.yml"):
        shutil.copy(path, tmp_path / path.name)
    edited = tmp_path / "backups.rules.yml"
    edited.write_text(edited.read_text().replace("for: 5m", "for: 6m", 1))
    (tmp_path / "old.rules.yml").write_text("groups: []\n")
    result = run_generate("--check", "--out", str(tmp_path))
    assert result.returncode == 1
    assert "backups.rules.yml: out of date" in result.stderr
    assert "old.rules.yml: out of date" in result.stderr
    assert "queues.rules.yml" not in result.stderr


def test_override_file_renders_shorter_durations_elsewhere(tmp_path: Path) -> None:
    data = yaml.safe_load((RULES / "thresholds.yaml").read_text())
    data["alerts"]["BackupMissing"]["for"] = "5s"
    data["runbook_base_url"] = "https://example.org/runbooks/"
    override = tmp_path / "fast.yaml"
    override.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    result = run_generate("--thresholds", str(override), "--out", str(out))
    assert result.returncode == 0, result.stderr
    backups = yaml.safe_load((out / "backups.rules.yml").read_text())
    missing = next(r for r in backups["groups"][0]["rules"] if r["alert"] == "BackupMissing")
    assert missing["for"] == "5s"
    assert missing["annotations"]["runbook_url"] == "https://example.org/runbooks/BackupMissing.md"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in RULES.glob("*.rules.yml")
    )


def test_bad_thresholds_name_the_file_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load((RULES / "thresholds.yaml").read_text())
    data["alerts"]["HostCPUHigh"]["for"] = "five minutes"
    data["alerts"]["HostMemoryHigh"]["tiers"][0]["severity"] = "page"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_thresholds(bad)
    text = "\n".join(info.value.problems)
    assert f"{bad}: alerts.HostCPUHigh.for: invalid duration 'five minutes'" in text
    assert f"{bad}: alerts.HostMemoryHigh.tiers[0].severity:" in text
    result = run_generate("--thresholds", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 1
    assert "alerts.HostCPUHigh.for" in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_and_missing_alerts_are_errors(tmp_path: Path) -> None:
    data = yaml.safe_load((RULES / "thresholds.yaml").read_text())
    data["alerts"]["BackupTooYoung"] = data["alerts"].pop("BackupTooOld")
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RenderError) as info:
        render_files(load_thresholds(path))
    assert "alerts.BackupTooYoung: no such alert" in str(info.value)
    assert "alerts.BackupTooOld: missing" in str(info.value)


def test_unknown_token_in_params_is_reported(tmp_path: Path) -> None:
    data = yaml.safe_load((RULES / "thresholds.yaml").read_text())
    del data["alerts"]["FailedJobsBurst"]["params"]
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(RenderError, match=r"alerts.FailedJobsBurst: unknown token\(s\) @window@"):
        render_files(load_thresholds(path))


@pytest.mark.parametrize(
    ("expr", "selector", "expected"),
    [
        ("up{@sel@} == 0", "", "up == 0"),
        ("up{@sel@} == 0", 'job="x"', 'up{job="x"} == 0'),
        ('m{state="p",@sel@}', "", 'm{state="p"}'),
        ('m{state="p",@sel@}', 'a="b",', 'm{state="p",a="b"}'),
    ],
)
def test_selector_insertion(expr: str, selector: str, expected: str) -> None:
    assert with_selector(expr, selector) == expected
