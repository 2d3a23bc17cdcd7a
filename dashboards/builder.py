"""Small pure helpers that build Grafana dashboard JSON (schema 39, Grafana 10+)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.model import Thresholds

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
COLORS = {"ok": "green", "warning": "orange", "critical": "red"}
# Grafana keeps this range at least four scrape intervals wide at any zoom, so no rate() comes
# out empty for lack of samples.
RATE_INTERVAL = "[$__rate_interval]"


@dataclass(frozen=True)
class Query:
    """One PromQL target and its legend."""

    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    """What a panel shows; layout and ids are assigned by `dashboard()`."""

    title: str
    description: str
    unit: str
    queries: Sequence[Query]
    kind: str = "timeseries"  # timeseries | stat | table
    width: int = 12
    height: int = 8
    thresholds: Sequence[tuple[float, str]] = ()  # (from value, colour name), ascending
    runbooks: Sequence[str] = ()
    options: dict[str, Any] = field(default_factory=dict)


def glance(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    thresholds: Sequence[tuple[float, str]] = (),
    runbooks: Sequence[str] = (),
    width: int = 4,
) -> Panel:
    """Return a small stat panel: the last value on the background colour of its threshold."""
    options = {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}
    return Panel(title, description, unit, queries, "stat", width, 5, thresholds, runbooks, options)


def rate_sum(counter: str, by: str, per: int = 60) -> str:
    """Return PromQL for `counter`'s increase per `per` seconds, summed by the labels `by`."""
    total = f"sum by ({by}) " if by else "sum"
    return f"{total}(rate({counter}{RATE_INTERVAL})) * {per}"


def quantile(q: float, histogram: str, by: str = "") -> str:
    """Return PromQL for the q-quantile of `histogram` over the rate interval, per `by`."""
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({q:g}, sum by ({labels}) (rate({histogram}_bucket{RATE_INTERVAL})))"


@dataclass(frozen=True)
class Board:
    """One dashboard: written to `dashboards/<stem>.json` with uid `maintwatch-<stem>`."""

    stem: str
    title: str
    description: str
    panels: Callable[[Thresholds], list[Panel]]


def _thresholds(steps: Sequence[tuple[float, str]]) -> dict[str, Any]:
    out: list[dict[str, Any]] = [{"color": "green", "value": None}]
    out += [{"color": COLORS.get(c, c), "value": v} for v, c in steps]
    return {"mode": "absolute", "steps": out}


def _targets(queries: Sequence[Query]) -> list[dict[str, Any]]:
    return [
        {
            "datasource": DATASOURCE,
            "expr": q.expr,
            "legendFormat": q.legend or "__auto",
            "refId": chr(ord("A") + i),
            "range": True,
        }
        for i, q in enumerate(queries)
    ]


def panel_json(panel: Panel, pid: int, x: int, y: int, runbook_base: str) -> dict[str, Any]:
    """Render one panel at grid position (x, y)."""
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel.thresholds)}
    if panel.kind == "timeseries" and panel.thresholds:
        defaults["custom"] = {"thresholdsStyle": {"mode": "line+area"}}
    links = [
        {"title": f"Runbook: {name}", "url": f"{runbook_base.rstrip('/')}/{name}.md"}
        for name in panel.runbooks
    ]
    return {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": panel.options,
        "links": links,
        "targets": _targets(panel.queries),
    }


def layout(panels: Sequence[Panel], runbook_base: str) -> list[dict[str, Any]]:
    """Place panels left to right, wrapping at 24 columns, and number them from 1."""
    out, x, y, row_height = [], 0, 0, 0
    for pid, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        out.append(panel_json(panel, pid, x, y, runbook_base))
        x += panel.width
        row_height = max(row_height, panel.height)
    return out


def dashboard(
    uid: str, title: str, description: str, panels: Sequence[Panel], runbook_base: str
) -> dict[str, Any]:
    """Render a whole dashboard with a `datasource` variable and links between dashboards."""
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["maintwatch"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "links": [
            {
                "title": "maintwatch",
                "type": "dashboards",
                "tags": ["maintwatch"],
                "asDropdown": True,
                "includeVars": True,
                "keepTime": True,
            }
        ],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Data source",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "refresh": 1,
                    "regex": "",
                }
            ]
        },
        "annotations": {"list": []},
        "panels": layout(panels, runbook_base),
    }
