"""Metrics are declared once: the reference, the catalogue and the docs follow the declarations."""

from __future__ import annotations

import re
from pathlib import Path

from exporter.collectors.registry import REGISTRY, declared_metrics
from exporter.metricdoc import render
from receiver.metricdefs import METRICS as RECEIVER_METRICS
from rules.catalogue import METRICS

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "docs" / "exporter" / "metrics-reference.md"


def test_reference_matches_the_declarations() -> None:
    assert REFERENCE.read_text() == render(), (
        f"{REFERENCE} is stale: python -m exporter.metricdoc > {REFERENCE.relative_to(REPO)}"
    )


def test_catalogue_is_the_declared_metrics() -> None:
    declared = [*declared_metrics().values(), *RECEIVER_METRICS]
    assert {m.name: m.type for m in declared} == METRICS
    assert METRICS["maintwatch_db_slow_query_duration_seconds"] == "histogram"
    assert METRICS["maintwatch_collector_errors_total"] == "counter"
    assert METRICS["maintwatch_receiver_intake_lag_seconds"] == "gauge"


def test_every_collector_declares_what_it_emits() -> None:
    for kind, cls in REGISTRY.items():
        assert cls.metrics, kind
        assert len({m.name for m in cls.metrics}) == len(cls.metrics), kind
        assert set(cls.other_instance_label) <= set(cls.metrics), kind


def test_metrics_named_in_the_docs_are_declared() -> None:
    declared = set(METRICS)
    docs = REPO / "docs"
    pages = [REPO / "README.md", docs / "design.md", docs / "rules.md", docs / "dashboards.md"]
    pages += [docs / "alertmanager.md", docs / "reliability.md"]
    pages += sorted((docs / "exporter").glob("*.md")) + sorted((docs / "receiver").glob("*.md"))
    pages += sorted((docs / "runbooks").glob("*.md"))
    for page in pages:
        for name in re.findall(r"\bmaintwatch_[a-z0-9_]*[a-z0-9]\b", page.read_text()):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name in declared or base in declared or name in NOT_METRICS, (page, name)


# Names in the docs that look like metrics but are not: the failed-jobs gauge's name in early
# designs (the docs explain why it is `_rows`), the drill's marker table, a name prefix, the
# Slack buttons' action ids.
NOT_METRICS = {
    "maintwatch_failed_jobs",
    "maintwatch_drill",
    "maintwatch_queue_job",
    "maintwatch_ack",
    "maintwatch_resolve",
}
