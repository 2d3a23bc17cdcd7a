"""The backtest's pure parts: state machine, grid, stats, diff, threshold split, selectors."""

from __future__ import annotations

from rules.backtest.diff import compare
from rules.backtest.evaluate import Grid
from rules.backtest.statemachine import Episode, replay
from rules.backtest.stats import summarize
from rules.backtest.threshold import split
from rules.lint.promql import parse

TIMES = [float(t) for t in range(0, 20)]


def test_for_turns_pending_into_firing_once_held_long_enough() -> None:
    # Present 2..9: pending at 2, firing at 5 (5 - 2 >= 3), ends at 10 when missing.
    assert replay(TIMES, set(map(float, range(2, 10))), 3, 0) == [(2.0, 5.0, 10.0)]


def test_disappearing_resets_pending_and_for_counts_again() -> None:
    present = {2.0, 3.0, 5.0, 6.0, 7.0, 8.0}
    assert replay(TIMES, present, 3, 0) == [(2.0, None, 4.0), (5.0, 8.0, 9.0)]


def test_for_zero_fires_at_the_first_evaluation() -> None:
    assert replay(TIMES, {4.0}, 0, 0) == [(4.0, 4.0, 5.0)]


def test_keep_firing_for_bridges_short_gaps_and_counts_from_the_first_missing_step() -> None:
    # Firing at 1; missing 3-4 (kept), back at 5 (count cleared), missing from 7: kept while
    # t - 7 < 3, so it ends at 10.
    present = {1.0, 2.0, 5.0, 6.0}
    assert replay(TIMES, present, 0, 3) == [(1.0, 1.0, 10.0)]


def test_keep_firing_for_does_not_hold_a_pending_alert() -> None:
    assert replay(TIMES, {1.0, 2.0}, 5, 10) == [(1.0, None, 3.0)]


def test_still_active_at_the_end_has_no_end() -> None:
    assert replay(TIMES, {18.0, 19.0}, 1, 0) == [(18.0, 19.0, None)]


def test_grid_chunks_stay_on_the_grid_and_under_the_point_limit() -> None:
    grid = Grid(0.0, 25.0, 1.0)
    chunks = grid.chunks(max_points=10)
    assert chunks == [(0.0, 9.0), (10.0, 19.0), (20.0, 25.0)]
    assert len(grid.times()) == 26


def _ep(fired: float, ended: float | None, labels: tuple[tuple[str, str], ...] = ()) -> Episode:
    return Episode(labels, fired - 60, fired, ended)


def test_stats_count_firings_time_flaps_and_pages() -> None:
    eps = [_ep(100, 200), _ep(500, 700), _ep(10_000, None)]
    stats = summarize(eps, "critical", 0, 20_000)
    assert stats.firings == 3
    assert stats.firing_seconds == 100 + 200 + 10_000
    assert stats.longest_seconds == 10_000
    assert stats.breach_to_fire_seconds == 60
    assert stats.flaps == 1  # 500 began 300 s after 200; 10 000 is more than an hour later
    assert stats.still_firing == 1
    assert stats.pages_per_week is not None
    assert round(stats.pages_per_week) == round(3 / (20_000 / 604_800))
    assert summarize(eps, "warning", 0, 20_000).pages_per_week is None


def test_diff_matches_overlapping_firings_of_the_same_labels() -> None:
    a, b = (("queue", "a"),), (("queue", "b"),)
    current = [_ep(100, 200, a), _ep(1000, 1100, a), _ep(100, 200, b)]
    proposed = [_ep(40, 200, a), _ep(3000, 3100, a), _ep(160, 200, b)]
    diff = compare(current, proposed, 5000, 60)
    assert (diff.added, diff.removed, diff.earlier, diff.later) == (1, 1, 1, 1)


def test_split_finds_value_and_threshold_only_for_a_final_comparison() -> None:
    found = split('sum by (q) (x{state="pending"}) > 1000')
    assert found is not None
    assert (found.value, found.op, found.threshold) == (
        'sum by (q) (x{state="pending"})',
        ">",
        1000,
    )
    assert split("a > 1 * b and on (job) c > 0") is None
    assert split("x == 0") is None


def test_parse_finds_selectors_and_grouping_labels() -> None:
    parsed = parse(
        'sum by (job, queue) (rate(jobs_total{state!="done"}[5m] offset 1m)) / on (job)'
        " group_left max(limit:ratio) > 0.5 and time() - x > 3"
    )
    names = [s.name for s in parsed.selectors]
    assert names == ["jobs_total", "limit:ratio", "x"]
    assert parsed.selectors[0].matchers[0].name == "state"
    assert parsed.grouping_labels == {"job", "queue"}
