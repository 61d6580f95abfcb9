"""The evaluation report's two charts as SVG, drawn from the stored report when asked for.

SVG text is set by the viewer's own fonts, so the labels are Chinese on any phone, while the
server needs no CJK font (matplotlib would draw empty boxes without one) and no file beside
the model. The page shows them as images; `<title>` and `<desc>` say what they are.
"""

from __future__ import annotations

from html import escape
from typing import Any

from bot.core.categories import CATEGORY_LABELS, CHITCHAT
from bot.core.handoff import FALLBACK_INTENT

INTENT_NAMES = {**CATEGORY_LABELS, CHITCHAT: "闲聊", FALLBACK_INTENT: "未分类"}
FONT = "-apple-system, 'PingFang SC', 'Microsoft YaHei', 'Noto Sans CJK SC', sans-serif"
CELL = 56
LABEL_W = 64
BAR_W = 56
BAR_GAP = 20
BAR_H = 200
# The bars' colour (the page's dark green) and the matrix's darkest blue.
GREEN = "#06743a"
BLUE = (11, 79, 179)


def intent_name(intent: str) -> str:
    return INTENT_NAMES.get(intent, intent)


def _svg(width: int, height: int, title: str, desc: str, body: list[str]) -> str:
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" font-family="{FONT}" font-size="14" '
            'role="img">',
            f"<title>{escape(title)}</title>",
            f"<desc>{escape(desc)}</desc>",
            f'<rect width="{width}" height="{height}" fill="#fff"/>',
            *body,
            "</svg>",
        ]
    )


def _text(x: float, y: float, text: str, **attrs: str) -> str:
    extra = "".join(f' {name.replace("_", "-")}="{value}"' for name, value in attrs.items())
    return f'<text x="{x:.0f}" y="{y:.0f}"{extra}>{escape(text)}</text>'


def _shade(count: int, peak: int) -> tuple[str, str]:
    """The cell's fill, from white to dark blue, and a text colour readable on it."""
    share = count / peak if peak else 0.0
    r, g, b = (round(255 - (255 - c) * share) for c in BLUE)
    return f"rgb({r},{g},{b})", "#fff" if share > 0.5 else "#111"


def confusion_svg(report: dict[str, Any]) -> str:
    """Rows: the right category of each test sentence; columns: what the model read."""
    confusion = report["confusion"]
    rows, columns, matrix = confusion["rows"], confusion["columns"], confusion["matrix"]
    top, left = 70, LABEL_W + 30
    width, height = left + CELL * len(columns) + 10, top + CELL * len(rows) + 10
    peak = max((max(row) for row in matrix if row), default=0)
    centre, middle = left + CELL * len(columns) / 2, top + CELL * len(rows) / 2
    body = [
        _text(centre, 20, "模型的判断", text_anchor="middle", font_weight="700"),
        _text(14, middle, "正确的类别", text_anchor="middle", font_weight="700",
              transform=f"rotate(-90 14 {middle:.0f})"),
    ]  # fmt: skip
    for c, column in enumerate(columns):
        body.append(
            _text(left + CELL * c + CELL / 2, top - 12, intent_name(column), text_anchor="middle")
        )
    for r, row in enumerate(rows):
        y = top + CELL * r
        body.append(_text(left - 8, y + CELL / 2 + 5, intent_name(row), text_anchor="end"))
        for c, count in enumerate(matrix[r]):
            fill, ink = _shade(count, peak)
            x = left + CELL * c
            body.append(f'<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{fill}" '
                        'stroke="#ccc"/>')  # fmt: skip
            body.append(
                _text(x + CELL / 2, y + CELL / 2 + 5, str(count), text_anchor="middle", fill=ink)
            )
    desc = "每行是测试题正确的类别，每列是模型的判断；对角线上的数字是认对的，其余是认错的。"
    return _svg(width, height, "认对和认错的测试题", desc, body)


def f1_svg(report: dict[str, Any]) -> str:
    """One bar per category: its F1 on the held-out sentences, from 0 to 1."""
    per_intent = report["per_intent"]
    top, left, bottom = 30, 44, 40
    width = left + (BAR_W + BAR_GAP) * len(per_intent) + BAR_GAP
    height = top + BAR_H + bottom
    body = []
    for tick in (0, 0.5, 1):
        y = top + BAR_H * (1 - tick)
        body.append(f'<line x1="{left}" y1="{y:.0f}" x2="{width - 6}" y2="{y:.0f}" stroke="#ccc"/>')
        body.append(_text(left - 6, y + 5, f"{tick:g}", text_anchor="end"))
    for i, (intent, scores) in enumerate(per_intent.items()):
        f1 = float(scores["f1"])
        x = left + BAR_GAP + (BAR_W + BAR_GAP) * i
        bar = BAR_H * f1
        body.append(
            f'<rect x="{x}" y="{top + BAR_H - bar:.0f}" width="{BAR_W}" height="{bar:.0f}" '
            f'fill="{GREEN}"/>'
        )
        body.append(_text(x + BAR_W / 2, top + BAR_H - bar - 6, f"{f1:.2f}", text_anchor="middle"))
        body.append(
            _text(x + BAR_W / 2, top + BAR_H + 22, intent_name(intent), text_anchor="middle")
        )
    desc = "每类求助的 F1：1 表示这一类全部认对，也没有把别的认成这一类。"
    return _svg(width, height, "各类求助认得准不准（F1）", desc, body)


CHARTS = {"confusion": confusion_svg, "f1": f1_svg}
