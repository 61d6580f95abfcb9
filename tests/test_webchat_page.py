"""The webchat pages as a resident over 60 reads them: nothing smaller than 18 px (browser tests
measure the rendered sizes; this catches a small size coming back into the style sheet), and a
privacy notice one tap away that says what this service keeps, how long, and who sees it."""

from __future__ import annotations

import re
from pathlib import Path

from bot.channels.webchat.privacy import PAGE
from bot.settings import Settings
from tests.helpers import Service, start_service

STATIC = Path(__file__).resolve().parents[1] / "bot" / "web" / "static"
ROOT_PX = 20
MIN_PX = 18
COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
FONT_SIZE = re.compile(r"font-size:\s*([\d.]+)(rem|px)")
CLASS_ATTRIBUTE = re.compile(r'class="([^"]+)"')
CLASS_IN_SCRIPT = re.compile(r"el\('\w+', '([\w -]+)'")


def webchat_classes() -> set[str]:
    found = CLASS_ATTRIBUTE.findall((STATIC / "webchat.html").read_text() + PAGE)
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


async def test_the_privacy_notice_is_linked_from_the_webchat(service: Service) -> None:
    chat_page = await (await service.client.get("/webchat/")).text()
    assert chat_page.count('href="/webchat/privacy"') == 2  # before a name is given, and after

    resp = await service.client.get("/webchat/privacy")

    assert resp.status == 200 and resp.content_type == "text/html"
    notice = await resp.text()
    for heading in ("我们记下什么", "留多久", "谁能看到", "想看或想删"):
        assert heading in notice
    assert "办完<strong>180天</strong>（大约6个月）后" in notice
    assert "<script" not in notice


async def test_the_privacy_notice_shows_the_retention_this_service_keeps(
    settings: Settings, aiohttp_client
) -> None:  # type: ignore[no-untyped-def]
    service = await start_service(aiohttp_client, settings.with_overrides(retention_days=30))

    notice = await (await service.client.get("/webchat/privacy")).text()

    assert "办完<strong>30天</strong>后" in notice
