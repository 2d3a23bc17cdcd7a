"""`python -m rules lint` against a real Prometheus: exactly the problems a rule file has."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.cli import main
from tests.rules.conftest import History

RULES = """
groups:
  - name: shop
    rules:
      - alert: QueueBacklogHigh
        expr: sum by (job, instance, queue) (maintwatch_queue_jobs{state="pending"}) > 1000
        for: 10m
      - alert: QueueTypo
        expr: maintwatch_queue_job{state="pending"} > 10
        for: 5m
      - alert: WrongLabel
        expr: maintwatch_backup_files{backup_set="db"} <= 0
        for: 5m
      - alert: WrongGrouping
        expr: sum by (job, database_name) (maintwatch_db_connections) > 90
        for: 5m
      - alert: MissingRecording
        expr: job:queue_jobs:rate5m > 3
        for: 5m
      - alert: ShortFor
        expr: maintwatch_db_connections > 1000
        for: 10s
"""


def test_lint_reports_each_problem_once_located(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shop.rules.yml"
    path.write_text(RULES, encoding="utf-8")
    code = main(["lint", "--prometheus.url", history_prometheus.url, "--lookback", "4h", str(path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out.splitlines() == [
        f"{path}: shop/QueueTypo: metric maintwatch_queue_job has no series;"
        " did you mean maintwatch_queue_jobs?",
        f"{path}: shop/WrongLabel: label backup_set is on no series of maintwatch_backup_files"
        " (its labels: backup, instance, job)",
        f"{path}: shop/WrongGrouping: label database_name (by/on/ignoring/without) is on none"
        " of the series read",
        f"{path}: shop/MissingRecording: recording rule job:queue_jobs:rate5m is defined in no"
        " rule file and has no data",
        f"{path}: shop/ShortFor: warning: for 10s is shorter than the evaluation interval 1m",
        f"{path}: shop/ShortFor: warning: for 10s is shorter than the scrape interval 1m",
    ]
    assert "6 rules in 1 files: 4 error(s), 2 warning(s)" in err


def test_lint_passes_a_clean_file_and_warns_on_cardinality(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.rules.yml"
    path.write_text(
        "groups:\n- name: ok\n  rules:\n"
        "  - record: job:queue_pending:sum\n    expr: sum by (job) (maintwatch_queue_jobs)\n"
        "  - alert: Many\n    expr: maintwatch_backup_files > 0 or maintwatch_db_connections\n"
        "    for: 5m\n",
        encoding="utf-8",
    )
    url = history_prometheus.url
    args = ["--lookback", "4h", "--max-series", "1", "--cardinality", str(path)]
    code = main(["lint", "--prometheus.url", url, *args])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        f"{path}: ok/Many: warning: returns 2 series now, over --max-series 1",
        f"{path}: ok/Many: 2 series now",
    ]


def test_lint_names_a_recording_rule_that_is_defined_but_not_loaded(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rec.rules.yml"
    path.write_text(
        "groups:\n- name: rec\n  rules:\n"
        "  - record: job:queue_pending:sum\n    expr: sum by (job) (maintwatch_queue_jobs)\n"
        "  - alert: Deep\n    expr: job:queue_pending:sum > 100\n    for: 5m\n",
        encoding="utf-8",
    )
    url = history_prometheus.url
    assert main(["lint", "--prometheus.url", url, "--lookback", "4h", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: rec/Deep: recording rule job:queue_pending:sum has no data:"
        " is its rule file loaded in Prometheus?"
    ]
