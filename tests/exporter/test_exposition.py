"""The pre-rendered exposition is byte-identical to prometheus_client's encoders."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import exposition, openmetrics
from prometheus_client.core import Metric
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from exporter.exposition import encode, render
from exporter.metrics import MetricSet, merge_families


class _Registry:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def instances() -> list[list[Metric]]:
    a = MetricSet({"backup": "db"})
    a.gauge("maintwatch_backup_files", "Files in the set.", 3)
    a.gauge("maintwatch_backup_size_bytes", 'Total "bytes"\\ of the set\nper set.', 1.5e12)
    a.counter("maintwatch_log_messages_total", "Log entries.", 7, level="error")
    a.histogram(
        "maintwatch_db_slow_query_duration_seconds",
        "Durations.",
        [(0.5, 1), (1.0, 4), (float("inf"), 9)],
        12.25,
    )
    b = MetricSet({"backup": 'we"ird\\na\nme ✓'})
    b.gauge("maintwatch_backup_files", "Files in the set.", float("nan"))
    b.counter("maintwatch_log_messages_total", "Log entries.", float("inf"), level="warning")
    b.gauge("maintwatch_backup_volume_free_bytes", "Free.", -0.0)
    return [a.families(), b.families()]


@pytest.mark.parametrize("om", [False, True])
def test_matches_prometheus_client_byte_for_byte(om: bool) -> None:
    groups = instances()
    merged = merge_families(groups)
    reference = (openmetrics.exposition.generate_latest if om else exposition.generate_latest)(
        _Registry(merged)
    )  # type: ignore[arg-type]
    assert encode([render(g) for g in groups], om) == reference


label_values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(st.lists(st.tuples(label_values, st.floats(allow_nan=False)), min_size=1, max_size=20))
def test_any_label_value_and_number_round_trips_through_openmetrics_parser(
    rows: list[tuple[str, float]],
) -> None:
    ms = MetricSet()
    for i, (value, number) in enumerate(rows):
        ms.gauge("maintwatch_x", "x.", number, name=value, i=str(i))
    text = encode([render(ms.families())], openmetrics=True).decode()
    (family,) = text_string_to_metric_families(text)
    parsed = {s.labels["i"]: (s.labels["name"], s.value) for s in family.samples}
    assert parsed == {str(i): (v, n) for i, (v, n) in enumerate(rows)}
