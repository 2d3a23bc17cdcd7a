"""`python -m rules backtest` end to end against a real Prometheus holding backfilled history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from rules.cli import main
from tests.conftest import free_port
from tests.rules._prometheus import BearerProxy, repo_thresholds, running_prometheus
from tests.rules.conftest import History

CRIT = 'DatabaseConnectionsHigh{severity="critical"}'
BACKLOG = 'QueueBacklogHigh{severity="warning"}'


def proposal(tmp_path: Path) -> Path:
    """Raise the backlog threshold to 2000 and lower the connections' critical tier to 80 %."""
    doc: dict[str, Any] = repo_thresholds()
    doc["alerts"]["QueueBacklogHigh"]["threshold"] = 2000
    doc["alerts"]["DatabaseConnectionsHigh"]["tiers"][1]["threshold"] = 0.8
    path = tmp_path / "proposed.yaml"
    import yaml

    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run(history: History, *extra: str) -> int:
    args = ["backtest", "--prometheus.url", history.url, "--step", "1m"]
    args += ["--start", str(history.start), "--end", str(history.end), *extra]
    return main(args)


def test_table_shows_changes_and_counts(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(history_prometheus, "--thresholds", str(proposal(tmp_path))) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines[2:] if line.startswith(("Q", "D"))}
    # alert *  fired  firing time  longest  breach→fire  flaps  pages  added removed earlier later
    assert rows[BACKLOG][:5] == [BACKLOG, "*", "2", "→", "1"]
    assert rows[BACKLOG][-4:] == ["+0", "-1", "0", "0"]
    assert rows[CRIT][:5] == [CRIT, "*", "1", "→", "2"]
    assert rows[CRIT][-4:] == ["+1", "-0", "0", "0"]
    warn = rows['DatabaseConnectionsHigh{severity="warning"}']
    assert warn[1:3] == ["2", "20m"]  # unchanged: 2 firings, 15 + 5 minutes
    assert any("unchanged alert tier(s) would not have fired" in line for line in lines)


def test_json_and_the_page_limit(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        history_prometheus,
        "--thresholds",
        str(proposal(tmp_path)),
        "--format",
        "json",
        "--max-added-pages",
        "0",
    )
    out, err = capsys.readouterr()
    assert code == 3
    assert "adds 1 page(s), over --max-added-pages 0" in err
    doc = json.loads(out)
    assert doc["pages_added"] == 1
    crit = next(a for a in doc["alerts"] if a["key"] == CRIT)
    assert crit["diff"] == {"added": 1, "removed": 0, "earlier": 0, "later": 0}
    assert [e["fired_at"] is not None for e in crit["proposed"]["episodes"]] == [True, True]
    assert crit["proposed"]["stats"]["pages_per_week"] > 0


def test_pictures_and_index(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pictures"
    assert (
        run(history_prometheus, "--thresholds", str(proposal(tmp_path)), "--plots", str(out)) == 0
    )
    assert "pictures:" in capsys.readouterr().err
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "DatabaseConnectionsHigh_severity_critical.png",
        "QueueBacklogHigh_severity_warning.png",
    ]
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    index = (out / "index.html").read_text()
    assert all(f'src="{name}"' in index for name in pngs)


def test_suggest_finds_the_threshold_for_at_most_n_firings(
    history_prometheus: History, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(history_prometheus, "--suggest", "QueueBacklogHigh", "--max-firings", "1") == 0
    assert capsys.readouterr().out.strip() == (
        f"{BACKLOG}: > 1000 fired 2 time(s); > 1500 would have fired 1 time(s) (limit 1)"
    )


def test_clear_errors(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = ["--start", "2001-01-01T00:00:00Z", "--end", "2001-01-02T00:00:00Z"]
    assert main(["backtest", "--prometheus.url", history_prometheus.url, *empty]) == 1
    assert "no series of any metric the rules read" in capsys.readouterr().err
    down = f"http://127.0.0.1:{free_port()}"
    assert main(["backtest", "--prometheus.url", down, "--step", "1m"]) == 1
    assert f"{down}: unreachable" in capsys.readouterr().err
    assert main(["backtest", "--prometheus.url", down, "--since", "2x"]) == 1
    assert "backtest: --since: invalid duration '2x'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("alerts: {QueueBacklogHigh: {severity: loud}}\n", encoding="utf-8")
    assert (
        main(["backtest", "--prometheus.url", history_prometheus.url, "--thresholds", str(bad)])
        == 1
    )
    assert f"{bad}: alerts.QueueBacklogHigh.severity" in capsys.readouterr().err


def test_basic_auth_from_a_password_file(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  sre: '{hashed}'\n", encoding="utf-8")
    secret = tmp_path / "password"
    secret.write_text("s3cret\n", encoding="utf-8")
    config = {"global": {"evaluation_interval": "1m"}}
    with running_prometheus(tmp_path, config, extra=(f"--web.config.file={web}",)) as url:
        base = ["backtest", "--prometheus.url", url, "--since", "1h", "--alert", "Watchdog"]
        assert main(base) == 1
        assert "HTTP 401" in capsys.readouterr().err
        creds = ["--prometheus.username", "sre", "--prometheus.password-file", str(secret)]
        assert main([*base, *creds]) == 0
        assert "Watchdog" in capsys.readouterr().out


def test_bearer_token_from_a_file_through_a_proxy(
    history_prometheus: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tmp_path / "token"
    token.write_text("t0k3n\n", encoding="utf-8")
    with BearerProxy(history_prometheus.url, "t0k3n").running() as url:
        base = ["--prometheus.url", url, "--lookback", "4h"]
        assert main(["lint", *base, str(tmp_path / "missing.yml")]) == 1
        assert "missing.yml" in capsys.readouterr().err
        rules = tmp_path / "ok.rules.yml"
        rules.write_text(
            "groups:\n- name: ok\n  rules:\n  - alert: A\n    expr: maintwatch_backup_files < 0\n"
        )
        assert main(["lint", *base, str(rules)]) == 1
        assert "HTTP 401" in capsys.readouterr().err
        creds = ["--prometheus.bearer-token-file", str(token)]
        assert main(["lint", *base, *creds, str(rules)]) == 0
        out, err = capsys.readouterr()
        assert out == ""
        assert "0 error(s), 0 warning(s)" in err
