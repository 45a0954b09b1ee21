"""Server-side SVG charts: horizontal bars, stacked bars, lines over time, sparklines.

Each function returns a complete ``<svg>`` element as :class:`markupsafe.Markup`, ready
to drop into a template; no JavaScript and no chart library. Every piece of text that
comes from data (labels, titles, series names) is XML-escaped here, so a campaign named
``<script>`` stays text. Colours come from one fixed palette; each chart has a ``<title>``
and ``role="img"`` for screen readers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

PALETTE = ("#1f5fbf", "#2e9e5b", "#e0a100", "#b3261e", "#7b4fb8", "#0f8b8d", "#8a8f98")
MUTED = "#5b6575"
GRID = "#d8dde5"
FONT = 'font-family="system-ui, sans-serif"'

Format = Callable[[float], str]


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def default_format(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 or float(v).is_integer() else f"{v:.2f}"


def percent(v: float) -> str:
    return f"{v:.0%}"


def _svg(width: int, height: int, title: str, body: list[str], css_class: str) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css_class)}" '
        # The card's width, the drawing's proportions: fits any screen, never clipped.
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'style="max-width: {width * 2}px; height: auto" role="img" '
        f'aria-label="{escape(title)}" {FONT} font-size="12">'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _text(x: float, y: float, text: str, anchor: str = "start", **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{escape(v)}"' for k, v in attrs.items())
    return f'<text x="{_num(x)}" y="{_num(y)}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _empty(width: int, height: int, title: str, css_class: str) -> Markup:
    return _svg(
        width, height, title,
        [_text(width / 2, height / 2, "no data", "middle", fill=MUTED)], css_class,
    )  # fmt: skip


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 460,
    bar_height: int = 20,
    label_width: int = 150,
    fmt: Format = default_format,
    max_value: float | None = None,
) -> Markup:
    """Horizontal bars, one per ``(label, value)``, in the given order."""
    height = max(len(items), 1) * (bar_height + 6) + 8
    if not items:
        return _empty(width, 40, title, "bar")
    top = max_value if max_value is not None else max(v for _, v in items)
    span = width - label_width - 60
    body = []
    for i, (label, value) in enumerate(items):
        y = 4 + i * (bar_height + 6)
        w = span * value / top if top > 0 else 0
        body.append(_text(label_width - 6, y + bar_height * 0.7, label, "end"))
        body.append(
            f'<rect x="{label_width}" y="{y}" width="{_num(max(w, 0))}" '
            f'height="{bar_height}" fill="{PALETTE[i % len(PALETTE)]}" rx="2"/>'
        )
        body.append(_text(label_width + max(w, 0) + 4, y + bar_height * 0.7, fmt(value)))
    return _svg(width, height, title, body, "bar")


def stacked_bar(
    rows: Sequence[tuple[str, Sequence[float]]],
    series: Sequence[str],
    *,
    title: str,
    width: int = 560,
    bar_height: int = 20,
    label_width: int = 150,
) -> Markup:
    """One horizontal bar per row, split into ``series`` (values in series order), each
    bar scaled to the largest row total; a legend on top."""
    if not rows:
        return _empty(width, 40, title, "stacked")
    legend_h = 22
    height = legend_h + len(rows) * (bar_height + 6) + 8
    top = max(sum(values) for _, values in rows) or 1
    span = width - label_width - 60
    body = []
    x = 0.0
    for i, name in enumerate(series):
        body.append(f'<rect x="{_num(x)}" y="4" width="10" height="10" fill="{_colour(i)}"/>')
        body.append(_text(x + 14, 13, name))
        x += 24 + 7 * len(name)
    for r, (label, values) in enumerate(rows):
        y = legend_h + 4 + r * (bar_height + 6)
        body.append(_text(label_width - 6, y + bar_height * 0.7, label, "end"))
        x = float(label_width)
        for i, value in enumerate(values):
            w = span * value / top
            if w > 0:
                body.append(
                    f'<rect x="{_num(x)}" y="{y}" width="{_num(w)}" height="{bar_height}" '
                    f'fill="{_colour(i)}"><title>{escape(series[i])}: '
                    f"{escape(default_format(value))}</title></rect>"
                )
            x += w
        body.append(_text(x + 4, y + bar_height * 0.7, default_format(sum(values))))
    return _svg(width, height, title, body, "stacked")


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def line_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    fmt: Format = default_format,
    max_value: float | None = None,
    every: int | None = None,
) -> Markup:
    """Lines over ``labels`` (x axis, e.g. hours or weeks), one per ``(name, values)``;
    ``None`` values leave a gap. ``every`` labels every n-th x tick (default: ~8 ticks)."""
    if not labels or not series:
        return _empty(width, 60, title, "line")
    left, right, top_pad, bottom = 48, 12, 24, 28
    plot_w, plot_h = width - left - right, height - top_pad - bottom
    values = [v for _, vs in series for v in vs if v is not None]
    top = max_value if max_value is not None else max(values, default=0) or 1
    step = plot_w / max(len(labels) - 1, 1)

    def px(i: int) -> float:
        return left + i * step

    def py(v: float) -> float:
        return top_pad + plot_h - plot_h * v / top

    body = [
        f'<line x1="{left}" y1="{_num(py(0))}" x2="{width - right}" y2="{_num(py(0))}" '
        f'stroke="{GRID}"/>',
        f'<line x1="{left}" y1="{_num(py(top))}" x2="{width - right}" y2="{_num(py(top))}" '
        f'stroke="{GRID}" stroke-dasharray="3 3"/>',
        _text(left - 4, py(0) + 4, fmt(0), "end", fill=MUTED),
        _text(left - 4, py(top) + 4, fmt(top), "end", fill=MUTED),
    ]
    every = every or max(1, -(-len(labels) // 8))
    last = len(labels) - 1
    for i, label in enumerate(labels):
        if i == last:  # the newest point (e.g. the live hour) sits on the right edge
            body.append(_text(px(i), height - 8, label, "end" if last else "middle", fill=MUTED))
        elif i % every == 0 and (last - i) >= every / 2:  # no overlap with the last label
            body.append(_text(px(i), height - 8, label, "middle", fill=MUTED))
    x = float(left)
    for s, (name, vs) in enumerate(series):
        body.append(f'<rect x="{_num(x)}" y="6" width="10" height="10" fill="{_colour(s)}"/>')
        body.append(_text(x + 14, 15, name))
        x += 24 + 7 * len(name)
        for segment in _segments(vs):
            points = " ".join(f"{_num(px(i))},{_num(py(v))}" for i, v in segment)
            body.append(
                f'<polyline points="{points}" fill="none" stroke="{_colour(s)}" stroke-width="2"/>'
            )
            for i, v in segment:
                body.append(
                    f'<circle cx="{_num(px(i))}" cy="{_num(py(v))}" r="2.5" '
                    f'fill="{_colour(s)}"><title>{escape(labels[i])}: '
                    f"{escape(fmt(v))}</title></circle>"
                )
    return _svg(width, height, title, body, "line")


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive non-missing values."""
    out: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if out[-1]:
                out.append([])
        else:
            out[-1].append((i, v))
    return [s for s in out if s]


def sparkline(
    values: Sequence[float], *, title: str = "trend", width: int = 120, height: int = 28
) -> Markup:
    """A small line without axes (the shape of a trend, e.g. calls per hour)."""
    if not values:
        return _empty(width, height, title, "spark")
    top = max(values) or 1
    step = (width - 4) / max(len(values) - 1, 1)
    points = " ".join(
        f"{_num(2 + i * step)},{_num(height - 2 - (height - 4) * v / top)}"
        for i, v in enumerate(values)
    )
    body = [f'<polyline points="{points}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>']
    return _svg(width, height, title, body, "spark")
