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
from exporter.metrics import MetricSet, counter, gauge, histogram, merge_families


class _Registry:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


FILES = gauge("maintwatch_backup_files", "Files in the set.")
SIZE = gauge("maintwatch_backup_size_bytes", 'Total "bytes"\\ of the set\nper set.')
FREE = gauge("maintwatch_backup_volume_free_bytes", "Free.")
MESSAGES = counter("maintwatch_log_messages_total", "Log entries.", "level")
DURATIONS = histogram("maintwatch_db_slow_query_duration_seconds", "Durations.")
ROUND_TRIP = gauge("maintwatch_x", "x.", "name", "i")


def instances() -> list[list[Metric]]:
    a = MetricSet({"backup": "db"})
    a.add(FILES, 3)
    a.add(SIZE, 1.5e12)
    a.add(MESSAGES, 7, level="error")
    a.add_histogram(DURATIONS, [(0.5, 1), (1.0, 4), (float("inf"), 9)], 12.25)
    b = MetricSet({"backup": 'we"ird\\na\nme ✓'})
    b.add(FILES, float("nan"))
    b.add(MESSAGES, float("inf"), level="warning")
    b.add(FREE, -0.0)
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
        ms.add(ROUND_TRIP, number, name=value, i=str(i))
    text = encode([render(ms.families())], openmetrics=True).decode()
    (family,) = text_string_to_metric_families(text)
    parsed = {s.labels["i"]: (s.labels["name"], s.value) for s in family.samples}
    assert parsed == {str(i): (v, n) for i, (v, n) in enumerate(rows)}


def test_a_sample_must_carry_exactly_the_declared_labels() -> None:
    ms = MetricSet({"backup": "db"})
    with pytest.raises(ValueError, match="declared"):
        ms.add(MESSAGES, 1)
    with pytest.raises(ValueError, match="declared"):
        ms.add(MESSAGES, 1, level="error", colour="red")
    with pytest.raises(ValueError, match="histogram"):
        ms.add(DURATIONS, 1)


def test_a_collector_set_refuses_a_metric_it_did_not_declare() -> None:
    ms = MetricSet({"backup": "db"}, declared=[FILES])
    ms.add(FILES, 1)
    with pytest.raises(ValueError, match="not among"):
        ms.add(SIZE, 1)


def test_counters_and_only_counters_end_in_total() -> None:
    with pytest.raises(ValueError, match="_total"):
        counter("maintwatch_restarts", "x.")
    with pytest.raises(ValueError, match="_total"):
        gauge("maintwatch_restarts_total", "x.")
