"""LogTail on real files: rename rotation, copytruncate, daily files, restarts, huge lines."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exporter.logtail import LineBuffer, LogTail, TailError
from exporter.paths import climbs_after_wildcard


class Lines:
    """Collect the lines a tail emits."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, bool]] = []

    def __call__(self, line: bytes, truncated: bool) -> None:
        self.got.append((line, truncated))

    def take(self) -> list[str]:
        """Return and forget the lines collected so far."""
        out = [line.decode() for line, _ in self.got]
        self.got.clear()
        return out


MakeTail = Callable[..., LogTail]


@pytest.fixture
def lines() -> Lines:
    return Lines()


@pytest.fixture
def make_tail() -> Iterator[MakeTail]:
    tails: list[LogTail] = []

    def make(pattern: str, **kwargs: object) -> LogTail:
        tail = LogTail(pattern, **kwargs)  # type: ignore[arg-type]  # test factory passes options through
        tails.append(tail)
        return tail

    yield make
    for tail in tails:
        tail.close()


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def test_starts_at_end_then_follows_appends(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    log.write_text("old 1\nold 2\n")
    tail = make_tail(str(log))
    tail.poll(lines)
    assert lines.take() == []
    append(log, "new 1\nnew ")
    tail.poll(lines)
    assert lines.take() == ["new 1"]  # a half-written line waits for its newline
    append(log, "2\n")
    tail.poll(lines)
    assert lines.take() == ["new 2"]


def test_start_mid_line_skips_the_partial_line(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    log.write_text("done\nhalf of a li")
    tail = make_tail(str(log))
    tail.poll(lines)
    append(log, "ne\nnext\n")
    tail.poll(lines)
    assert lines.take() == ["next"]


def test_from_beginning_and_file_created_later(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    log.write_text("a\nb\n")
    make_tail(str(log), from_beginning=True).poll(lines)
    assert lines.take() == ["a", "b"]
    later = tmp_path / "later.log"
    tail = make_tail(str(later))
    tail.poll(lines)  # not there yet: fine
    later.write_text("first\n")
    tail.poll(lines)
    assert lines.take() == ["first"]  # created after the first poll: read from its start


def test_rename_rotation_reads_old_rest_and_new_file(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    tail = make_tail(str(log))
    tail.poll(lines)
    append(log, "before\n")
    tail.poll(lines)
    assert lines.take() == ["before"]
    append(log, "late in old\n")
    log.rename(tmp_path / "app.log.1")
    log.write_text("in new\n")
    tail.poll(lines)
    assert sorted(lines.take()) == ["in new", "late in old"]
    # A writer that still has the old file open a moment after rotation is not lost either.
    append(tmp_path / "app.log.1", "straggler\n")
    append(log, "more\n")
    tail.poll(lines)
    assert sorted(lines.take()) == ["more", "straggler"]
    for _ in range(3):
        tail.poll(lines)
    assert lines.take() == []


def test_copytruncate_restarts_at_zero(tmp_path: Path, make_tail: MakeTail, lines: Lines) -> None:
    log = tmp_path / "app.log"
    log.write_text("x" * 100 + "\n")
    tail = make_tail(str(log))
    tail.poll(lines)
    append(log, "one\n")
    tail.poll(lines)
    assert lines.take() == ["one"]
    with log.open("r+") as handle:  # what logrotate's copytruncate does after copying
        handle.truncate(0)
    append(log, "after truncate\n")
    tail.poll(lines)
    assert lines.take() == ["after truncate"]


def test_truncate_and_regrow_past_offset_is_seen(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    log.write_text("short 1\n")
    tail = make_tail(str(log), from_beginning=True)
    tail.poll(lines)
    assert lines.take() == ["short 1"]
    # Truncated and rewritten past the old offset between two polls: the head changed.
    log.write_text("rewritten and much longer than before\nsecond\n")
    tail.poll(lines)
    assert lines.take() == ["rewritten and much longer than before", "second"]


def test_daily_files_roll_over(tmp_path: Path, make_tail: MakeTail, lines: Lines) -> None:
    day1 = tmp_path / "laravel-2025-05-01.log"
    day1.write_text("history\n")
    tail = make_tail(str(tmp_path / "laravel-*.log"))
    tail.poll(lines)
    append(day1, "late on day 1\n")
    day2 = tmp_path / "laravel-2025-05-02.log"
    day2.write_text("day 2 first\n")
    tail.poll(lines)
    assert sorted(lines.take()) == ["day 2 first", "late on day 1"]
    append(day2, "day 2 second\n")
    day1.unlink()  # retention deletes old days
    tail.poll(lines)
    assert lines.take() == ["day 2 second"]


def test_restart_resumes_from_saved_offsets(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    state = str(tmp_path / "state" / "tail.json")
    log.write_text("history\n")
    first = make_tail(str(log), state_file=state)
    first.poll(lines)
    append(log, "seen\n")
    first.poll(lines)
    first.close()
    assert lines.take() == ["seen"]
    append(log, "while down\n")
    second = make_tail(str(log), state_file=state)
    second.poll(lines)
    assert lines.take() == ["while down"]  # neither recounted nor skipped


def test_restart_after_rotation_while_down(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    state = str(tmp_path / "tail.json")
    log.write_text("history\n")
    first = make_tail(str(log), state_file=state)
    first.poll(lines)
    first.close()
    append(log, "end of old\n")
    log.rename(tmp_path / "app.log.1")
    log.write_text("start of new\n")
    second = make_tail(str(log), state_file=state)
    second.poll(lines)
    assert sorted(lines.take()) == ["end of old", "start of new"]


def test_restart_with_copytruncate_while_down(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    state = str(tmp_path / "tail.json")
    log.write_text("a fairly long history line number one\n")
    first = make_tail(str(log), state_file=state)
    first.poll(lines)
    first.close()
    # The save happened "long ago": the rewritten file is newer than it.
    data = json.loads(Path(state).read_text())
    Path(state).write_text(json.dumps({**data, "saved_at": 1.0}))
    log.write_text("new\n")
    second = make_tail(str(log), state_file=state)
    second.poll(lines)
    assert lines.take() == ["new"]


def test_corrupt_state_is_reported_and_ignored(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    state = tmp_path / "tail.json"
    state.write_text("{not json")
    log.write_text("history\n")
    warnings: list[tuple[str, dict[str, object]]] = []

    class Logger:
        def warning(self, event: str, **kw: object) -> None:
            warnings.append((event, kw))

    tail = make_tail(str(log), state_file=str(state), logger=Logger())
    tail.poll(lines)
    assert lines.take() == []
    assert warnings[0][0] == "log_state_unreadable"
    assert json.loads(state.read_text())["files"][0]["offset"] == len("history\n")


def test_huge_line_is_capped_and_keeps_head_and_tail(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    tail = make_tail(str(log), max_line_bytes=4096)
    tail.poll(lines)
    with log.open("a") as handle:
        handle.write("HEAD")
        for _ in range(10):
            handle.write("x" * (1024 * 1024))
        handle.write('"level":400}\nsmall\n')
    tail.poll(lines)
    (big, cut), (small, small_cut) = lines.got
    assert cut
    assert not small_cut
    assert small == b"small"
    assert len(big) <= 4096 + 1
    assert big.startswith(b"HEADxxx")
    assert big.endswith(b'"level":400}')


def test_read_budget_spreads_a_backlog_over_polls(
    tmp_path: Path, make_tail: MakeTail, lines: Lines
) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    tail = make_tail(str(log), max_read_bytes=64 * 1024)
    tail.poll(lines)
    append(log, "".join(f"{i:09d}\n" for i in range(20000)))  # 200 000 bytes
    polls = 0
    while len(lines.got) < 20000:
        tail.poll(lines)
        polls += 1
        assert polls < 10
    assert polls == 4
    assert lines.take() == [f"{i:09d}" for i in range(20000)]


def test_missing_directory_is_an_error(tmp_path: Path, make_tail: MakeTail, lines: Lines) -> None:
    tail = make_tail(str(tmp_path / "nope" / "app.log"))
    with pytest.raises(TailError, match="nope does not exist"):
        tail.poll(lines)


def test_line_buffer_crlf_and_empty_lines() -> None:
    got: list[bytes] = []
    buffer = LineBuffer(1024)
    consumed = buffer.feed(b"a\r\n\nb", lambda line, _cut: got.append(line))
    assert got == [b"a", b""]
    assert consumed == 4
    assert buffer.pending == 1


@pytest.mark.parametrize(
    ("pattern", "climbs"),
    [
        ("/srv/app/../shared/logs/laravel-*.log", False),
        ("/var/log/*/../../etc/*.log", True),
        ("/var/log/mysql-[ab]/..", True),
        ("/var/log/..*.log", False),
        ("storage/logs/laravel.log", False),
    ],
)
def test_climbs_after_wildcard(pattern: str, climbs: bool) -> None:
    assert climbs_after_wildcard(pattern) is climbs
