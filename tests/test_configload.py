"""--check-config as an operator meets it: one run lists every problem, each at its own path,
in words about the config rather than about pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.collectors.registry import load_config as load_exporter
from maintwatch.configload import ConfigError
from receiver.config import load_config as load_receiver

BIN = Path(sys.executable).parent


def receiver_problems(path: Path, text: str) -> list[str]:
    """Return the problems of a receiver config that takes webhooks without credentials."""
    path.write_text("webhook: {auth: none}\n" + text)
    with pytest.raises(ConfigError) as caught:
        load_receiver(path)
    return [p.removeprefix(f"{path}: ") for p in caught.value.problems]


def exporter_problems(path: Path, text: str) -> list[str]:
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_exporter(path)
    return [p.removeprefix(f"{path}: ") for p in caught.value.problems]


def test_field_errors_duplicates_and_references_in_one_run(tmp_path: Path) -> None:
    found = receiver_problems(
        tmp_path / "r.yml",
        "channels:\n"
        "  - {name: mail, type: email, host: h, from: a@example.org, to: [b@example.org],"
        " hots: x}\n"
        "  - {name: mail, type: console}\n"
        "  - {name: log, type: console}\n"
        "people: [{id: ann, name: Ann}, {id: ann, name: Ann 2}]\n"
        "routes:\n"
        "  - {channels: [mail, log, ghost], people: [bob], policy: nope}\n"
        "delivery: {max_attempts: lots}\n",
    )
    assert found == [
        "delivery.max_attempts: expected a whole number, got 'lots'",
        "channels[0].hots: unknown field; did you mean 'host'?",
        "channels[1].name: duplicate channel name 'mail' (first at channels[0])",
        "people[1].id: duplicate person id 'ann' (first at people[0])",
        # `mail` names an item with its own error: not reported as unknown as well.
        "routes[0].channels[2]: unknown channel 'ghost'",
        "routes[0].people[0]: unknown person 'bob'",
        "routes[0].policy: unknown policy 'nope'",
    ]


def test_references_keep_the_file_indices_when_an_earlier_item_is_invalid(
    tmp_path: Path,
) -> None:
    found = receiver_problems(
        tmp_path / "r.yml",
        "channels: [{name: c, type: console}]\n"
        "routes:\n"
        "  - {channels: [c], colour: red}\n"
        "  - {channels: [c, gone]}\n",
    )
    assert found == [
        "routes[0].colour: unknown field",
        "routes[1].channels[1]: unknown channel 'gone'",
    ]


def test_messages_are_worded_for_an_operator(tmp_path: Path) -> None:
    found = receiver_problems(
        tmp_path / "r.yml",
        "store: {type: mysql}\n"
        "external_url: pager.example.com\n"
        "chanels: []\n"
        "api: {token_file: 5}\n",
    )
    assert found == [
        "external_url: expected an absolute http(s) URL such as https://pager.example.com,"
        " got 'pager.example.com'",
        "store: unknown type 'mysql'; known: sqlite, postgres",
        "api.token_file: expected a file path, got 5",
        "chanels: unknown field; did you mean 'channels'?",
    ]
    assert not [p for p in found if "Input" in p or "pydantic" in p or "<class" in p]


def test_a_typo_gets_the_nearest_field(tmp_path: Path) -> None:
    found = exporter_problems(
        tmp_path / "e.yml", "backups: [{name: db, directory: /srv, verfy: gzip}]\n"
    )
    assert found == ["backups[0].verfy: unknown field; did you mean 'verify'?"]


def test_unset_variable_in_a_secret_file_field_is_one_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MW_TEST_UNSET_TOKEN_FILE", raising=False)
    found = receiver_problems(
        tmp_path / "r.yml", "api: {token_file: '${MW_TEST_UNSET_TOKEN_FILE}'}\n"
    )
    assert found == ["api.token_file: environment variable MW_TEST_UNSET_TOKEN_FILE is not set"]


def test_relative_secret_files_are_read_beside_the_config(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "api_token").write_text("from-beside-the-config\n")
    config = tmp_path / "r.yml"
    config.write_text("webhook: {auth: none}\napi: {token_file: secrets/api_token}\n")
    token = load_receiver(config).api.bearer_token()
    assert token is not None
    assert token.get_secret_value() == "from-beside-the-config"


def test_bare_number_durations_are_seconds(tmp_path: Path) -> None:
    config = tmp_path / "e.yml"
    config.write_text("defaults: {interval: 45, timeout: 2.5}\n")
    defaults = load_exporter(config).defaults
    assert (defaults.interval, defaults.timeout) == (45.0, 2.5)


@pytest.mark.parametrize(
    ("program", "default"),
    [("exporter", "maintwatch-exporter.yml"), ("receiver", "maintwatch-receiver.yml")],
)
def test_help_shows_the_default_config_path(program: str, default: str) -> None:
    done = subprocess.run(
        [str(BIN / f"maintwatch-{program}"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert f"(default: {default})" in " ".join(done.stdout.split())
