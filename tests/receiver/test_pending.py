"""The inbox file's backlog as the receiver knows it without I/O."""

from __future__ import annotations

from receiver.intake.pending import SPAN, Pending


def test_commits_wait_until_the_applier_mark_passes_their_last_row() -> None:
    pending = Pending()
    assert (pending.count(), pending.oldest()) == (0, None)
    pending.committed(1, 3, 10.0)  # rows 1-3, the first came at 10.0
    pending.committed(4, 5, 11.0)
    assert (pending.count(), pending.oldest()) == (5, 10.0)
    pending.applied(2)  # inside the first span: it keeps its first arrival
    assert (pending.count(), pending.oldest()) == (3, 10.0)
    pending.applied(5)
    assert (pending.count(), pending.oldest()) == (0, None)
    pending.applied(4)  # a late, lower mark never brings rows back
    assert pending.count() == 0
    pending.committed(6, 6, 12.0)
    assert (pending.count(), pending.oldest()) == (1, 12.0)


def test_a_span_the_mark_entered_grows_no_more() -> None:
    pending = Pending()
    pending.committed(1, 2, 10.0)
    pending.applied(1)  # the applier is one row behind when the next commit comes
    pending.committed(3, 3, 50.0)
    pending.applied(2)
    assert (pending.count(), pending.oldest()) == (1, 50.0)  # not row 1's 10.0


def test_a_long_backlog_is_kept_in_spans() -> None:
    pending = Pending()
    for seq in range(1, 10 * SPAN + 1):  # one row per commit, the worst case
        pending.committed(seq, seq, float(seq))
    assert pending.count() == 10 * SPAN
    assert len(pending._spans) == 10  # the memory bound is the point
    pending.applied(SPAN + 1)  # the second span's first row: the span keeps its arrival
    assert pending.oldest() == SPAN + 1
    pending.applied(2 * SPAN)
    assert (pending.count(), pending.oldest()) == (8 * SPAN, 2 * SPAN + 1)


def test_rows_found_at_open_count_until_the_applier_reports_its_mark() -> None:
    pending = Pending()
    # Rows 101-104 are in the file: the pruned ones before them were applied.
    pending.start([(101, 104, 1.0)], 104)
    assert (pending.count(), pending.oldest()) == (4, 1.0)
    pending.applied(102)  # the applier's first report: 101 and 102 were applied, not pruned
    assert (pending.count(), pending.oldest()) == (2, 1.0)
    pending.committed(105, 105, 5.0)
    assert pending.count() == 3
    pending.applied(105)
    assert (pending.count(), pending.oldest()) == (0, None)


def test_an_empty_file_at_open_knows_nothing_waits() -> None:
    pending = Pending()
    pending.start([], 7)  # rows 1-7 were applied and pruned long ago
    assert (pending.count(), pending.oldest()) == (0, None)
    pending.applied(7)  # the store's mark
    pending.committed(8, 8, 9.0)
    assert (pending.count(), pending.oldest()) == (1, 9.0)
