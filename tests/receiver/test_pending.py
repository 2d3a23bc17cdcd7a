"""The inbox file's backlog as the receiver knows it without I/O."""

from __future__ import annotations

from receiver.intake.pending import Pending


def test_commits_wait_until_the_applier_mark_passes_their_last_row() -> None:
    pending = Pending()
    assert (pending.count(), pending.oldest()) == (0, None)
    pending.committed(3, 10.0)  # rows 1-3, the first came at 10.0
    pending.committed(5, 11.0)
    assert (pending.count(), pending.oldest()) == (5, 10.0)
    pending.applied(2)  # part of the first commit: its rows came together, its time stays
    assert (pending.count(), pending.oldest()) == (3, 10.0)
    pending.applied(3)
    assert (pending.count(), pending.oldest()) == (2, 11.0)
    pending.applied(5)
    assert (pending.count(), pending.oldest()) == (0, None)
    pending.applied(4)  # a late, lower mark never brings rows back
    assert pending.count() == 0


def test_rows_found_at_open_count_until_the_applier_reports_its_mark() -> None:
    pending = Pending()
    # Rows 101-104 are in the file: the pruned ones before them were applied.
    pending.start([(101, 1.0), (102, 2.0), (103, 3.0), (104, 4.0)])
    assert (pending.count(), pending.oldest()) == (4, 1.0)
    pending.applied(102)  # the applier's first report: 101 and 102 were applied, not pruned
    assert (pending.count(), pending.oldest()) == (2, 3.0)
    pending.committed(105, 5.0)
    assert pending.count() == 3


def test_an_empty_file_at_open_knows_nothing_waits() -> None:
    pending = Pending()
    pending.start([])
    pending.applied(7)  # the store's mark of rows pruned long ago
    assert (pending.count(), pending.oldest()) == (0, None)
    pending.committed(8, 9.0)
    assert (pending.count(), pending.oldest()) == (1, 9.0)
