"""Dashboard JSON structure, checked without a Grafana server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.catalogue import COUNTER, HISTOGRAM, METRICS, unknown_metrics

ROOT = Path(__file__).resolve().parents[2]
BOARDS = sorted((ROOT / "dashboards").glob("*.json"))
RATE_FUNCS = {"rate", "irate", "increase"}
_COUNTERS = [n for n, kind in METRICS.items() if kind == COUNTER]
_COUNTERS += [f"{n}_bucket" for n, kind in METRICS.items() if kind == HISTOGRAM]
_COUNTERS += ["node_cpu_seconds_total", "http_requests_total"]


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _exprs(board: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in board["panels"] for t in p["targets"]]


def enclosing_function(expr: str, pos: int) -> str:
    """Return the name of the function call whose parentheses enclose position `pos`."""
    depth = 0
    for i in range(pos - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(":
            if depth == 0:
                return re.search(r"([a-z_]*)\s*$", expr[:i]).group(1)  # type: ignore[union-attr]
            depth -= 1
    return ""


def test_there_is_an_overview_and_one_board_per_area() -> None:
    names = {p.stem for p in BOARDS}
    areas = {"backups", "queues", "databases", "tls", "apps", "services", "receiver"}
    assert {"overview", *areas} == names


def test_committed_dashboards_are_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dashboards", "generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_ids_grid_units_descriptions(path: Path) -> None:
    board = _load(path)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_datasource_variable_used_everywhere(path: Path) -> None:
    board = _load(path)
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in board["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_counters_only_through_rate_and_rates_use_rate_interval(path: Path) -> None:
    for expr in _exprs(_load(path)):
        for name in _COUNTERS:
            for match in re.finditer(rf"\b{name}\b", expr):
                func = enclosing_function(expr, match.start())
                assert func in RATE_FUNCS, f"raw counter {name} in: {expr}"
        for match in re.finditer(r"\b(i?rate)\(", expr):
            rest = expr[match.end() :]
            window = re.search(r"\[([^\]]+)\]", rest)
            assert window is not None, expr
            assert window.group(1) == "$__rate_interval", expr


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: p.stem)
def test_every_maintwatch_metric_is_in_the_catalogue(path: Path) -> None:
    for expr in _exprs(_load(path)):
        assert not unknown_metrics(expr), expr


def test_runbook_links_point_at_existing_runbooks() -> None:
    for path in BOARDS:
        for panel in _load(path)["panels"]:
            for link in panel["links"]:
                name = link["url"].rsplit("/", 1)[-1]
                assert (ROOT / "docs" / "runbooks" / name).is_file(), link


def test_panel_thresholds_come_from_thresholds_yaml() -> None:
    services = _load(ROOT / "dashboards" / "services.json")
    memory = next(p for p in services["panels"] if p["title"] == "Memory used")
    steps = memory["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["color"], s["value"]) for s in steps] == [
        ("green", None),
        ("orange", 0.85),
        ("red", 0.9),
    ]


def test_count_panels_turn_colour_where_their_alert_fires() -> None:
    # MaintwatchReceiverNotificationsFailing fires past 0 (warning) and past 2 (critical).
    receiver = _load(ROOT / "dashboards" / "receiver.json")
    failed = next(p for p in receiver["panels"] if p["title"].startswith("Failed notifications"))
    steps = failed["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["color"], s["value"]) for s in steps] == [
        ("green", None),
        ("orange", 1.0),
        ("red", 3.0),
    ]


def test_enclosing_function() -> None:
    expr = "sum(rate(a_total[5m])) + a_total"
    assert enclosing_function(expr, expr.index("a_total")) == "rate"
    assert enclosing_function(expr, expr.rindex("a_total")) == ""


def test_grafana_provisioning_files() -> None:
    base = ROOT / "docker" / "grafana" / "provisioning"
    sources = yaml.safe_load((base / "datasources" / "maintwatch.yml").read_text())
    assert sources["datasources"][0]["type"] == "prometheus"
    providers = yaml.safe_load((base / "dashboards" / "maintwatch.yml").read_text())
    assert providers["providers"][0]["options"]["path"].endswith("/maintwatch")
