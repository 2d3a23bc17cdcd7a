"""Config loading: every problem reported with its file and location."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.collectors import registry
from exporter.collectors.registry import load_config, load_config_text
from exporter.config import effective_timing
from maintwatch.configload import ConfigError
from tests.exporter._fake_collector import FakeCollector


@pytest.fixture(autouse=True)
def fake_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.REGISTRY, "fake", FakeCollector)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "x.yml")
    return info.value.problems


def test_valid_config_and_defaults() -> None:
    config = load_config_text(
        "defaults: {interval: 1m, timeout: 5s}\nfake:\n  - name: a\n  - {name: b, interval: 5s}\n"
    )
    a, b = config.instances()["fake"]
    assert effective_timing(config, a) == (60, 5)
    assert effective_timing(config, b) == (5, 5)


def test_every_problem_is_listed_with_its_location() -> None:
    found = problems(
        "defaults: {interval: 26x}\n"
        "fake:\n"
        "  - {name: a, value: lots}\n"
        "  - {name: b, colour: red}\n"
        "  - {value: 1}\n"
        "unknown_section: {}\n"
    )
    assert found == [
        "x.yml: defaults.interval: invalid duration '26x': use a number and a unit "
        "(ms, s, m, h, d, w, y), e.g. 30s, 5m, 26h",
        "x.yml: fake[0].value: expected a number, got 'lots'",
        "x.yml: fake[1].colour: unknown field",
        "x.yml: fake[2].name: required field is missing",
        "x.yml: unknown_section: unknown field",
    ]


def test_duplicate_names() -> None:
    assert problems("fake: [{name: a}, {name: a}]") == [
        "x.yml: fake[1].name: duplicate name 'a' (first at fake[0])"
    ]


def test_duplicates_show_in_the_same_run_as_field_errors() -> None:
    # The duplicate has an error of its own; both show, each at its own path.
    assert problems("fake: [{name: a}, {name: b}, {name: a, value: lots}]") == [
        "x.yml: fake[2].value: expected a number, got 'lots'",
        "x.yml: fake[2].name: duplicate name 'a' (first at fake[0])",
    ]


def test_yaml_syntax_error_has_line_and_column() -> None:
    assert problems("fake:\n  - name: [a\n") == [
        "x.yml: line 3, column 1: expected ',' or ']', but got '<stream end>'"
    ]


def test_env_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MW_NAME", "from-env")
    assert load_config_text("fake: [{name: '${MW_NAME}'}]").instances()["fake"][0].name == (
        "from-env"
    )
    monkeypatch.delenv("MW_NAME")
    assert problems("fake: [{name: '${MW_NAME}'}]")[0] == (
        "x.yml: fake[0].name: environment variable MW_NAME is not set"
    )


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yml")
    assert info.value.problems == [
        f"{tmp_path / 'nope.yml'}: cannot read: No such file or directory"
    ]
