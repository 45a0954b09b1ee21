"""Server-side SVG charts: well-formed XML, escaped labels, geometry that follows the data."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from bot.web import charts

SVG = "{http://www.w3.org/2000/svg}"
EVIL = "<script>alert(\"x\")</script> & 'quoted'"


def parse(svg: Markup) -> ET.Element:
    assert isinstance(svg, Markup)
    root = ET.fromstring(str(svg))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def rects(root: ET.Element) -> list[ET.Element]:
    return list(root.iter(f"{SVG}rect"))


def test_bar_chart_escapes_labels_and_scales_bars() -> None:
    svg = charts.bar_chart([(EVIL, 10), ("half", 5), ("zero", 0)], title=EVIL)
    assert "<script>" not in svg
    root = parse(svg)
    assert root.find(f"{SVG}title") is not None
    assert "".join(root.find(f"{SVG}title").itertext()) == EVIL  # type: ignore[union-attr]
    assert EVIL in texts(root)
    widths = [float(r.get("width", "0")) for r in rects(root)]
    assert widths[0] == pytest.approx(2 * widths[1]) and widths[2] == 0
    assert "10" in texts(root) and "5" in texts(root)


def test_stacked_bar_splits_rows_into_series() -> None:
    svg = charts.stacked_bar(
        [("c1", [3, 1, 0]), (EVIL, [1, 1, 2])], ["queued", "in progress", EVIL], title="t"
    )
    root = parse(svg)
    assert EVIL in texts(root)  # a row label and a series name
    bars = [r for r in rects(root) if float(r.get("height", "0")) > 10]
    # c1: two non-empty segments; the second row: three; widths add up to the total.
    assert len(bars) == 5
    first_row = bars[:2]
    assert float(first_row[0].get("width", "0")) == pytest.approx(
        3 * float(first_row[1].get("width", "0"))
    )
    assert texts(root)[-1] == "4" and "4" in texts(root)  # row totals


def test_line_chart_plots_every_point_and_breaks_at_gaps() -> None:
    labels = [f"{h:02d}:00" for h in range(6)]
    svg = charts.line_chart(
        labels, [("calls", [0, 4, None, 2, 8, 8]), (EVIL, [1, 1, 1, 1, 1, 1])], title=EVIL
    )
    root = parse(svg)
    lines = list(root.iter(f"{SVG}polyline"))
    assert len(lines) == 3  # "calls" split by the gap, plus the second series
    assert len(list(root.iter(f"{SVG}circle"))) == 5 + 6
    assert EVIL in texts(root)
    # The highest value sits at the top of the plot, zero at the bottom.
    ys = [float(p.split(",")[1]) for p in lines[1].get("points", "").split()]
    assert ys[1] == ys[2] < ys[0]


def test_percent_axis_and_fixed_maximum() -> None:
    root = parse(
        charts.line_chart(
            ["w1", "w2"], [("agree", [0.5, 1.0])], title="t", fmt=charts.percent, max_value=1.0
        )
    )
    assert "100%" in texts(root) and "0%" in texts(root)


def test_sparkline_and_empty_charts() -> None:
    root = parse(charts.sparkline([1, 3, 2], title=EVIL))
    points = next(root.iter(f"{SVG}polyline")).get("points", "").split()
    assert len(points) == 3
    for empty in (
        charts.bar_chart([], title="e"),
        charts.stacked_bar([], ["a"], title="e"),
        charts.line_chart([], [], title="e"),
        charts.sparkline([], title="e"),
    ):
        assert "no data" in texts(parse(empty))
