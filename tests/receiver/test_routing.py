"""Matchers, routing, config references and the `routes` / --check-config CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from maintwatch.configload import ConfigError
from receiver.cli import main
from receiver.config import load_config_text
from receiver.routing.matchers import parse_labels, parse_matcher
from receiver.routing.routes import compile_routes, gaps, route
from tests.receiver._helpers import BASE_CONFIG, Script


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ("severity=critical", {"severity": "warning"}, False),
        ('team=~"ops|db"', {"team": "db"}, True),
        ('team=~"ops"', {"team": "devops"}, False),  # anchored like Alertmanager
        ('team!~"ops|db"', {"team": "web"}, True),
        ('service!="x"', {}, True),  # a missing label is the empty string
        ('service=""', {}, True),
        ('zone=~"é.*"', {"zone": "éu-1"}, True),
    ],
)
def test_matchers(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["severity", "1x=2", 'team=~"("', 'a="unterminated'])
def test_bad_matchers_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="matcher"):
        parse_matcher(text)


def test_first_match_wins_unless_continue(script: Script) -> None:
    config = load_config_text(
        BASE_CONFIG.replace("{name: db, ", "{name: db, continue: true, policy: p, ")
        + "policies: [{name: p}]\n"
    )
    routes = compile_routes(config.routes, config.default_route)
    both = route(routes, {"team": "db", "severity": "critical"})
    assert both.routes == ("db", "crit")
    assert both.channels == ("chat", "pager")
    assert both.policy == "p"
    assert route(routes, {"severity": "warning"}).routes == ("default",)
    assert parse_labels("a=1, b='x y'") == {"a": "1", "b": "x y"}


def test_check_config_lists_every_unknown_reference(script: Script) -> None:
    text = BASE_CONFIG + (
        "people: [{id: ann, name: Ann}, {id: ann, name: Ann2}]\npolicies: [{name: day}]\n"
    )
    text = text.replace("channels: [pager]}", "channels: [pager, nope], people: [bob], policy: x}")
    text = text.replace("delivery: {", "delivery: {fallback_channel: gone, ")
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "r.yml")
    assert caught.value.problems == [
        "r.yml: people[1].id: duplicate person id 'ann' (first at people[0])",
        "r.yml: routes[1].channels[1]: unknown channel 'nope'",
        "r.yml: routes[1].people[0]: unknown person 'bob'",
        "r.yml: routes[1].policy: unknown policy 'x'",
        "r.yml: delivery.fallback_channel: unknown channel 'gone'",
    ]


def test_schema_problems_have_locations(script: Script) -> None:
    text = (
        "channels: [{name: a, type: nosuch}, {name: b, type: script, extra: 1}]\n"
        "routes: [{matchers: ['team=~\"(\"']}]\n"
        "webhook: {auth: bearer}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, "r.yml")
    problems = "\n".join(caught.value.problems)
    assert "r.yml: channels[0]: unknown channel type" in problems
    assert "r.yml: channels[1].extra: unknown field" in problems
    assert "r.yml: routes[0].matchers: invalid regex" in problems
    assert "r.yml: webhook: auth: bearer needs token_file" in problems


def test_cli_routes_explains(
    script: Script, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.yml"
    path.write_text(BASE_CONFIG)
    code = main(["--config.file", str(path), "routes", "--labels", "severity=critical,team=ops"])
    out = capsys.readouterr().out
    assert code == 0
    assert 'db: team="db" -> no match: team="db" is false' in out
    assert 'crit: severity="critical" -> MATCH' in out
    assert "default: (matches everything) -> skipped" in out
    assert "=> channels: pager;" in out


def test_cli_check_config(
    script: Script, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good.yml"
    good.write_text(BASE_CONFIG)
    assert main(["--config.file", str(good), "--check-config"]) == 0
    assert "OK (4 channels, 2 routes, store sqlite)" in capsys.readouterr().out
    bad = tmp_path / "bad.yml"
    bad.write_text(BASE_CONFIG.replace("channels: [pager]", "channels: [pager2]"))
    assert main(["--config.file", str(bad), "--check-config"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: routes[1].channels[0]: unknown channel 'pager2'" in err


ARCHIVE = """
webhook: {auth: none}
channels:
  - {name: archive, type: file, path: /dev/null}
  - {name: pager, type: script}
  - {name: mail, type: script}
routes:
  - {name: audit, matchers: [], channels: [archive], AUDIT}
  - {name: ops, matchers: ['team="ops"'], channels: [pager]}
default_route: {channels: [mail]}
"""


def test_an_audit_route_does_not_count_as_handled(script: Script) -> None:
    config = load_config_text(ARCHIVE.replace("AUDIT", "audit: true"))
    routes = compile_routes(config.routes, config.default_route)
    unknown = route(routes, {"team": "web"})
    assert (unknown.routes, unknown.channels) == (("audit", "default"), ("archive", "mail"))
    assert not unknown.pages_nobody
    ops = route(routes, {"team": "ops"})
    assert (ops.routes, ops.channels) == (("audit", "ops"), ("archive", "pager"))
    # The same catch-all as a plain `continue` route handles everything: the default is dead.
    config = load_config_text(ARCHIVE.replace("AUDIT", "continue: true"))
    routes = compile_routes(config.routes, config.default_route)
    assert route(routes, {"team": "web"}).routes == ("audit",)
    assert route(routes, {"team": "web"}, frozenset({"archive"})).pages_nobody


def test_label_sets_that_page_nobody_are_found(script: Script) -> None:
    archive = frozenset({"archive"})
    gaps_of = {
        flag: gaps(compile_routes(c.routes, c.default_route), "severity", archive)
        for flag in ("audit: true", "continue: true")
        for c in [load_config_text(ARCHIVE.replace("AUDIT", flag))]
    }
    assert gaps_of["audit: true"] == []
    # Everything but team=ops reaches only the archive.
    assert {} in gaps_of["continue: true"]
    assert {"team": "ops"} not in gaps_of["continue: true"]
    stops = load_config_text(ARCHIVE.replace("AUDIT", "audit: true").replace("[pager]", "[]"))
    assert gaps(compile_routes(stops.routes, stops.default_route), "severity", archive) == [
        {"team": "ops"},
        {"team": "ops", "severity": "critical"},
        {"team": "ops", "severity": "warning"},
    ]


def test_cli_warns_about_label_sets_that_page_nobody(
    script: Script, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.yml"
    path.write_text(ARCHIVE.replace("AUDIT", "continue: true"))
    assert main(["--config.file", str(path), "--check-config"]) == 0
    err = capsys.readouterr().err
    assert f'{path}: warning: routes: incidents labelled {{severity="critical"}} page nobody' in err
    assert main(["--config.file", str(path), "routes", "--labels", "team=web"]) == 0
    out = capsys.readouterr().out
    assert "audit: (matches everything) -> MATCH (continue)" in out
    assert "=> pages nobody" in out
    path.write_text(ARCHIVE.replace("AUDIT", "audit: true"))
    assert main(["--config.file", str(path), "routes", "--labels", "team=web"]) == 0
    out = capsys.readouterr().out
    assert "audit: (matches everything) -> MATCH (audit: routing goes on" in out
    assert "default: (matches everything) -> MATCH (no other route handled the incident)" in out
    assert "pages nobody" not in out
