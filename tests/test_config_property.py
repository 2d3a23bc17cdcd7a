"""Hostile configuration: whatever the YAML, loading ends in a config or a located ConfigError.

Property-based (hypothesis): structured documents built from the real section and field
names, mutations of a valid config, and YAML-ish text. The property: `load_config_text`
returns or raises ConfigError, never anything else, and every problem is ONE line shaped
`file: location: message`. The regression tests at the end pin inputs that broke it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.collectors.registry import REGISTRY, load_config_text
from maintwatch.configload import ConfigError

SOURCE = "hostile.yml"
FIELDS = sorted(
    {"name", "interval", "timeout", "defaults", "state_dir", *REGISTRY}
    | {f for cls in REGISTRY.values() for f in cls.config_type.model_fields}
)
VALID: dict[str, Any] = {
    "defaults": {"interval": "30s", "timeout": "10s"},
    "backups": [{"name": "db", "directory": "/srv/backups", "glob": "db_*.sql.gz"}],
    "redis": [{"name": "q", "url": "redis://127.0.0.1:6379/0", "queues": ["default"]}],
    "databases": [
        {"name": "pg", "driver": "postgres", "dsn": "postgresql://u@h/db", "failed_jobs": True}
    ],
    "supervisor": [{"name": "s", "url": "unix:///run/supervisor.sock"}],
    "tls": [{"name": "t", "endpoint": "example.org:443"}],
    "http": [{"name": "h", "url": "http://127.0.0.1/health"}],
    "apps": [{"name": "a", "path": "/var/www/app", "logs": [{"path": "storage/logs/x.log"}]}],
    "slowlog": [{"name": "m", "path": "/var/log/mysql/slow.log"}],
}
relaxed = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(text: str) -> None:
    """Load `text`; assert it succeeds or fails with well-shaped problem lines only."""
    try:
        load_config_text(text, SOURCE)
    except ConfigError as exc:
        problems = exc.problems
    else:
        return
    assert problems, "a ConfigError must list at least one problem"
    for problem in problems:
        assert "\n" not in problem, f"problem spans lines: {problem!r}"
        assert problem.startswith(f"{SOURCE}: "), problem
        location, sep, message = problem.removeprefix(f"{SOURCE}: ").partition(": ")
        # A YAML position, "(top level)" or a field path, whose keys may be the user's own
        # unknown keys (any text): never empty.
        assert location.strip(), f"no location: {problem!r}"
        assert sep, f"no message: {problem!r}"
        assert message.strip(), f"no message: {problem!r}"


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["30s", "5m", "-5m", "1h30", "${MW_HOSTILE_UNSET}", "/tmp", "*", "..", ""]),
)
keys = st.one_of(st.sampled_from(FIELDS), st.from_regex(r"[a-z_]{1,10}", fullmatch=True))
documents = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)


@relaxed
@given(st.dictionaries(st.sampled_from(FIELDS), documents, max_size=4))
def test_structured_documents_never_crash(document: dict[str, Any]) -> None:
    check(yaml.safe_dump(document))


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return [prefix]
    out = [prefix] if prefix else []
    for key, child in items:
        out += _paths(child, (*prefix, key))
    return out


@relaxed
@given(st.data())
def test_mutations_of_a_valid_config_never_crash(data: st.DataObject) -> None:
    document = copy.deepcopy(VALID)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(document)))
        parent: Any = document
        for part in path[:-1]:
            parent = parent[part]
        replacement = data.draw(documents)
        if isinstance(parent, dict) and data.draw(st.booleans()):
            parent[data.draw(keys)] = replacement  # add a field (known or unknown)
        else:
            parent[path[-1]] = replacement
    check(yaml.safe_dump(document))


YAMLISH = st.text(
    alphabet=st.sampled_from(list("abcxyz019 :-_.,[]{}&*!|>'\"#%@`?\n\t$/\\")), max_size=120
)


@relaxed
@given(YAMLISH)
def test_yaml_ish_text_never_crashes(text: str) -> None:
    check(text)


def test_the_valid_base_loads() -> None:
    config = load_config_text(yaml.safe_dump(VALID), SOURCE)
    assert sum(len(v) for v in config.instances().values()) == 8


# Regressions found by hostile input (shared config code; see docs/reliability.md).


@pytest.mark.parametrize("text", ["a: &a [*a]", "backups: &x\n  - *x\n"])
def test_recursive_alias_is_a_config_error(text: str) -> None:
    check(text)
    with pytest.raises(ConfigError):
        load_config_text(text, SOURCE)


def test_control_character_is_located_on_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        load_config_text("backups:\n  - name: x\x00\n", SOURCE)
    check("backups:\n  - name: x\x00\n")
    assert "line 2" in err.value.problems[0]


@pytest.mark.parametrize(
    "field", ["defaults: {interval: -5}", "defaults: {timeout: -1s}", "defaults: {interval: .inf}"]
)
def test_nonpositive_or_infinite_timing_is_rejected(field: str) -> None:
    with pytest.raises(ConfigError, match="defaults"):
        load_config_text(field, SOURCE)


def test_overflowing_duration_is_rejected() -> None:
    text = "backups: [{name: x, directory: /srv, interval: " + "9" * 400 + "s}]"
    with pytest.raises(ConfigError, match=r"backups\[0\]\.interval"):
        load_config_text(text, SOURCE)
