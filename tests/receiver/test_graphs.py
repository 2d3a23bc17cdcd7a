"""What the incident page draws (pure parts): the plot read from an alert's PromQL, the series
that is the alert's, Prometheus' answer parsed or refused, and the SVG itself."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
import yaml

from receiver.graphs.curves import Curves
from receiver.graphs.fetch import GraphError, parse, pick
from receiver.graphs.png import png
from receiver.graphs.promql import Plot, plot, source
from receiver.graphs.svg import number, svg

RULES = Path(__file__).resolve().parents[2] / "rules"


def every_rule_expression() -> list[str]:
    """Return the expression of every alert the project ships."""
    found = []
    for path in sorted(RULES.glob("*.rules.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            found += [r["expr"] for r in group["rules"] if "alert" in r]
    return found


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (
            "(time() - x) > 2 * max_age and on (job, backup) files > 0",
            Plot("(time() - x)", "2 * max_age", ">"),
        ),
        ('sum by (a) (rate(m{level=~"error|x"}[5m])) * 60 > 10', None),
        ("up == 0", Plot("up", "0", "==")),
        ("x > bool on (a) group_left y", Plot("x", "y", ">")),
        ('m{a!="b"} <= 3 unless z', Plot('m{a!="b"}', "3", "<=")),
        ("absent(up)", Plot("absent(up)")),
    ],
)
def test_plot_splits_value_and_threshold(expr: str, expected: Plot | None) -> None:
    got = plot(expr)
    if expected is None:
        assert (got.threshold, got.operator) == ("10", ">")
        assert got.value.endswith("* 60")
    else:
        assert got == expected


def test_every_shipped_rule_has_something_to_draw() -> None:
    expressions = every_rule_expression()
    assert len(expressions) > 30
    for expr in expressions:
        drawn = plot(expr)
        assert drawn.value, expr
        assert drawn.value.count("(") == drawn.value.count(")"), expr
        assert drawn.threshold.count("(") == drawn.threshold.count(")"), expr


def test_source_reads_generator_urls() -> None:
    found = source("http://prom:9090/prefix/graph?g0.expr=up+%3E+1&g0.tab=1")
    assert found is not None
    assert (found.base, found.expr) == ("http://prom:9090/prefix", "up > 1")
    assert source("javascript:alert(1)") is None
    assert source("http://prom:9090/graph") is None


def test_pick_takes_the_series_whose_labels_the_alert_carries() -> None:
    series = [
        ({"__name__": "m", "backup": "a"}, [(1.0, 1.0)]),
        ({"__name__": "m", "backup": "b"}, [(1.0, 2.0)]),
    ]
    labels = {"alertname": "X", "backup": "b", "severity": "critical"}
    assert pick(series, labels) == [(1.0, 2.0)]
    assert pick(series, {"backup": "c"}) == []
    assert pick([({}, [(1.0, 5.0)])], labels) == [(1.0, 5.0)]  # a scalar threshold


def test_parse_refuses_what_is_not_a_range_result() -> None:
    good = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    assert parse(json.dumps(good).encode()) == []
    for bad in (b"<html>", b'{"status": "error", "error": "bad query"}', b'{"data": 1}'):
        with pytest.raises(GraphError):
            parse(bad)


def test_svg_draws_value_threshold_and_firing() -> None:
    value = [(float(t), float(t)) for t in range(0, 3600, 60)]
    threshold = [(float(t), 1800.0) for t in range(0, 3600, 60)]
    curves = Curves("x > 1800 <script>", (0.0, 3600.0), value, threshold, (1800.0, 3600.0))
    drawn = str(svg(curves))
    assert drawn.startswith('<svg class="graph"')
    assert 'class="value" d="M' in drawn
    assert 'class="threshold" d="M' in drawn
    assert 'class="firing"' in drawn
    assert "<script>" not in drawn
    gap = [(0.0, 1.0), (60.0, float("nan")), (120.0, 2.0)]
    assert str(svg(Curves("g", (0.0, 120.0), gap, [], (0.0, 0.0)))).count("M") >= 2


def test_axis_numbers_are_short() -> None:
    assert [number(v) for v in (0.5, 1500, 93600, 3.6e6)] == ["0.5", "1.5k", "93.6k", "3.6M"]


def test_png_is_a_valid_image_of_the_same_curves() -> None:
    value = [(float(t), float(t)) for t in range(0, 3600, 60)]
    image = png(Curves("x", (0.0, 3600.0), value, [(0.0, 1800.0)], (1800.0, 3600.0)))
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", image[16:24])
    assert (width, height) == (600, 150)
    raw = zlib.decompress(image[image.index(b"IDAT") + 4 : image.index(b"IEND") - 8])
    assert len(raw) == height * (1 + width * 3)
    assert bytes((21, 101, 192)) in raw  # the value's blue was drawn
