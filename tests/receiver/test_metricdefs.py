"""The receiver's metrics are declared once: the registry, the docs table and the rules follow."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry

from receiver import metricdefs
from receiver.escalation.worker import EscalatorMetrics
from receiver.metrics import ReceiverMetrics
from receiver.silences.silencer import SilencerMetrics
from receiver.store.base import Stats
from receiver.store.retention import RetentionMetrics

REPO = Path(__file__).resolve().parents[2]
RECEIVER = REPO / "receiver"
DECLARED = {m.name: m for m in metricdefs.METRICS}
# What the client library builds a family from; only receiver/metrics.py may use them.
CLIENT_METRICS = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}


def _wired() -> CollectorRegistry:
    """Return the registry of an app with every optional component on."""
    metrics = ReceiverMetrics(clock=lambda: 100.0)
    metrics.store_gauges.stats = Stats({"triggered": 1}, {"pending": 2}, 40.0)
    registry = metrics.registry
    EscalatorMetrics(registry)
    SilencerMetrics(registry)
    RetentionMetrics(registry)
    return registry


def _declared_name(family_name: str, kind: str) -> str:
    # The client names a counter's family without `_total`; its samples carry it.
    return f"{family_name}_total" if kind == "counter" else family_name


def test_names_are_unique_and_in_the_namespace() -> None:
    assert len(DECLARED) == len(metricdefs.METRICS)
    assert all(name.startswith("maintwatch_receiver_") for name in DECLARED)


def test_the_registry_exposes_exactly_the_declared_metrics() -> None:
    exposed = {}
    for family in _wired().collect():
        name = _declared_name(family.name, family.type)
        exposed[name] = family
        declared = DECLARED.get(name)
        assert declared is not None, f"{name} is exposed but not declared"
        assert (family.type, family.documentation) == (declared.type, declared.help), name
        for sample in family.samples:
            labels = set(sample.labels) - {"le"}
            assert labels == set(declared.labels), (name, sample)
    assert set(exposed) == set(DECLARED)


def test_the_store_gauges_serve_samples_of_their_declared_labels() -> None:
    # The one collector that builds its families by hand: the test above checks the labels
    # of its samples, provided there are some.
    families = {f.name: f for f in _wired().collect()}
    for metric in (metricdefs.INCIDENTS, metricdefs.OUTBOX_MESSAGES):
        assert families[metric.name].samples, metric.name
    [age] = families[metricdefs.OUTBOX_OLDEST_PENDING_AGE_SECONDS.name].samples
    assert (age.labels, age.value) == ({}, 60.0)


def _client_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client"):
            found |= {
                alias.name
                for alias in node.names
                if alias.name in CLIENT_METRICS or alias.name.endswith("MetricFamily")
            }
    return found


def test_only_receiver_metrics_builds_client_metrics_from_the_declarations() -> None:
    builders = {
        str(path.relative_to(REPO)): names
        for path in sorted(RECEIVER.rglob("*.py"))
        if (names := _client_imports(path))
    }
    assert list(builders) == ["receiver/metrics.py"], builders


def test_the_declarations_import_without_the_receiver_or_a_client_library() -> None:
    code = "import json, sys, receiver.metricdefs; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    loaded = [m for m in json.loads(out) if m.split(".")[0] in {"receiver", "prometheus_client"}]
    assert loaded == ["receiver", "receiver.metricdefs"]


def _config_md_table() -> dict[str, tuple[str, set[str]]]:
    """Return metric → (type, label names) from the table under `## Metrics` in config.md."""
    text = (REPO / "docs" / "receiver" / "config.md").read_text(encoding="utf-8")
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`maintwatch_"):
            continue
        # `channel, outcome (`sent`, `retry`)`: the label names, without their listed values.
        names = re.sub(r"\([^)]*\)", "", cells[2])
        rows[cells[0].strip("`")] = (cells[1], {n.strip() for n in names.split(",") if n.strip()})
    return rows


def test_the_config_md_table_lists_exactly_the_declared_metrics() -> None:
    table = _config_md_table()
    assert set(table) == set(DECLARED)
    for name, (kind, labels) in table.items():
        assert (kind, labels) == (DECLARED[name].type, set(DECLARED[name].labels)), name
