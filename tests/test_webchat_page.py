"""The webchat page as a resident over 60 reads it: nothing smaller than 18 px. (Browser tests
measure the rendered sizes; this catches a small size coming back into the style sheet.)"""

from __future__ import annotations

import re
from pathlib import Path

STATIC = Path(__file__).resolve().parents[1] / "bot" / "web" / "static"
ROOT_PX = 20
MIN_PX = 18
COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
FONT_SIZE = re.compile(r"font-size:\s*([\d.]+)(rem|px)")
CLASS_ATTRIBUTE = re.compile(r'class="([^"]+)"')
CLASS_IN_SCRIPT = re.compile(r"el\('\w+', '([\w -]+)'")


def webchat_classes() -> set[str]:
    found = CLASS_ATTRIBUTE.findall((STATIC / "webchat.html").read_text())
    for script in STATIC.glob("webchat*.js"):
        found += CLASS_IN_SCRIPT.findall(script.read_text())
    return {name for listed in found for name in listed.split()}


def font_sizes() -> dict[str, float]:
    """Each class's font size in px as the webchat gets it: a `.page-webchat .x` rule over a
    plain `.x` rule, a later rule over an earlier one."""
    plain: dict[str, float] = {}
    webchat: dict[str, float] = {}
    sheet = COMMENT.sub("", (STATIC / "style.css").read_text())
    for selectors, declarations in RULE.findall(sheet):
        size = FONT_SIZE.search(declarations)
        if size is None:
            continue
        px = float(size[1]) * (ROOT_PX if size[2] == "rem" else 1)
        for selector in (s.strip() for s in selectors.split(",")):
            if re.fullmatch(r"\.[\w-]+", selector):
                plain[selector[1:]] = px
            elif re.fullmatch(r"\.page-webchat \.[\w-]+", selector):
                webchat[selector.split(".")[-1]] = px
    return {**plain, **webchat}


def test_everything_a_resident_reads_is_at_least_18_px() -> None:
    sizes = font_sizes()
    classes = webchat_classes()
    assert {"msg-time", "msg-name", "chat-item-sub", "btn-choice"} <= classes
    small = {name: sizes[name] for name in classes if name in sizes and sizes[name] < MIN_PX}
    assert small == {}
