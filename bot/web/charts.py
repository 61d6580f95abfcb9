"""Bar charts as SVG, drawn on the server so the pages need no chart script.

Made for a 360 px phone first: each row's name on a line of its own above its bars (long grid
names never squeeze the bars), numbers written beside every bar, type at 16 units in a
360-unit-wide drawing, and a legend in words. A screen reader gets the chart's `<title>` and a
`<desc>` that says every number. Colours are presentation attributes, never `style`, so the
pages' Content-Security-Policy lets them through when the SVG is put into the page.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 360
PAD = 8
FONT = 16
BAR = 20
GAP = 4
ROW_GAP = 12
LABEL_LINE = FONT + 6
# Room to the right of the longest bar for its number.
NUMBER_ROOM = 44
FONT_FAMILY = '-apple-system, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif'


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    values: list[int]


@dataclass(frozen=True)
class Chart:
    """Rows of bars: one bar per series side by side (grouped), or one bar cut into the
    series (stacked)."""

    key: str
    title: str
    rows: list[str]
    series: list[Series]
    stacked: bool = False
    empty: str = "这段时间还没有数据"

    def describe(self) -> str:
        """Every number, in a sentence per row."""
        if not self.rows:
            return self.empty
        lines = []
        for i, row in enumerate(self.rows):
            parts = [f"{s.name} {s.values[i]}" for s in self.series]
            total = f"，共 {sum(s.values[i] for s in self.series)}" if self.stacked else ""
            lines.append(f"{row}：{'，'.join(parts)}{total}。")
        return "".join(lines)


def _text(parent: ET.Element, x: float, y: float, content: str, **attributes: str) -> None:
    node = ET.SubElement(parent, "text", {"x": f"{x:g}", "y": f"{y:g}", **attributes})
    node.text = content


def _legend(svg: ET.Element, chart: Chart, top: int) -> int:
    """The series' colours and names, wrapped onto as many lines as they need; the height
    they take."""
    if len(chart.series) < 2:
        return 0
    x, y = PAD, top
    for series in chart.series:
        width = 18 + 6 + _text_width(series.name) + 14
        if x + width > WIDTH - PAD and x > PAD:
            x, y = PAD, y + LABEL_LINE + 4
        ET.SubElement(svg, "rect", x=f"{x}", y=f"{y}", width="18", height="18", fill=series.colour)
        _text(svg, x + 24, y + 15, series.name)
        x += width
    return y - top + LABEL_LINE + 10


def _rect(parent: ET.Element, x: float, y: float, width: float, fill: str) -> None:
    ET.SubElement(
        parent,
        "rect",
        x=f"{x:.1f}",
        y=f"{y:g}",
        width=f"{width:.1f}",
        height=f"{BAR}",
        fill=fill,
    )


def _text_width(text: str) -> int:
    """Roughly: a Chinese character is a square, Latin letters and digits about half."""
    return sum(FONT if ord(c) > 0x2E80 else FONT * 6 // 10 for c in text)


def _row_height(chart: Chart) -> int:
    bars = 1 if chart.stacked else len(chart.series)
    return LABEL_LINE + bars * (BAR + GAP) + ROW_GAP


def render(chart: Chart) -> str:
    """The chart as an SVG document (a string), sized by its viewBox to the page's width."""
    svg = ET.Element(
        "svg",
        {
            "xmlns": SVG_NS,
            "role": "img",
            "aria-labelledby": f"chart-{chart.key}-title chart-{chart.key}-desc",
            "width": "100%",
            "font-family": FONT_FAMILY,
            "font-size": str(FONT),
            "fill": "#111111",
        },
    )
    ET.SubElement(svg, "title", id=f"chart-{chart.key}-title").text = chart.title
    ET.SubElement(svg, "desc", id=f"chart-{chart.key}-desc").text = chart.describe()
    top = PAD + _legend(svg, chart, PAD)
    if not chart.rows:
        _text(svg, PAD, top + FONT, chart.empty, fill="#4a4a4a")
        height = top + FONT + PAD
    else:
        height = _bars(svg, chart, top)
    svg.set("viewBox", f"0 0 {WIDTH} {height}")
    return ET.tostring(svg, encoding="unicode")


def _bars(svg: ET.Element, chart: Chart, top: int) -> int:
    """Draw every row under `top`; the drawing's height."""
    totals = [sum(s.values[i] for s in chart.series) for i in range(len(chart.rows))]
    largest = max(totals if chart.stacked else (v for s in chart.series for v in s.values))
    scale = (WIDTH - 2 * PAD - NUMBER_ROOM) / max(largest, 1)
    y = top
    for i, row in enumerate(chart.rows):
        _text(svg, PAD, y + FONT, row, **{"font-weight": "bold"})
        bar_y = y + LABEL_LINE
        if chart.stacked:
            end = _stacked(svg, chart, i, bar_y, scale)
            _text(svg, end + 6, bar_y + BAR - 4, str(totals[i]))
        else:
            for series in chart.series:
                width = series.values[i] * scale
                _rect(svg, PAD, bar_y, width, series.colour)
                _text(svg, PAD + width + 6, bar_y + BAR - 4, f"{series.values[i]}")
                bar_y += BAR + GAP
        y += _row_height(chart)
    # A baseline the bars start from.
    ET.SubElement(
        svg, "line", x1=f"{PAD}", y1=f"{top}", x2=f"{PAD}", y2=f"{y - ROW_GAP}", stroke="#767676"
    )
    return y + PAD


def _stacked(svg: ET.Element, chart: Chart, row: int, y: int, scale: float) -> float:
    """One row's bar cut into its series, each part's number inside when it fits; where the
    bar ends."""
    x = float(PAD)
    for series in chart.series:
        value = series.values[row]
        if not value:
            continue
        width = value * scale
        _rect(svg, x, y, width, series.colour)
        if width >= _text_width(str(value)) + 6:
            _text(
                svg,
                x + width / 2,
                y + BAR - 4,
                str(value),
                fill="#ffffff",
                **{"text-anchor": "middle"},
            )
        x += width
    return x
