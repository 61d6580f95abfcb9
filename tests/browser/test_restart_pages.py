"""A normal restart as the people on the pages see it: the console says 连接中… at once
instead of looking connected to a stopping server, and once the service is back it replays
what it missed and says so; a resident's line written meanwhile says 网络不好，正在重发 and
goes out by itself."""

from __future__ import annotations

import asyncio
import re

from tests.browser.pages import BROWSER, LEAK, PHONE, Site, expect, shot
from tests.helpers import request_reaches

pytestmark = BROWSER

LIGHT = "3号楼楼道灯坏了，晚上看不见"
# The page notices a stopping server's closed socket at once; this leaves room for a slow
# machine, and is far from the ~45 s a page used to look connected to a stopping process.
NOTICED_MS = 2000
# A line written while the page knows it is offline says so as it appears, not at the next
# attempt to reconnect (1 s, 2 s, 4 s … apart) or after five seconds without an answer.
AT_ONCE_MS = 500


async def test_a_restart_shows_connecting_then_replays_what_the_console_missed(
    site: Site,
) -> None:
    member = await site.console("王建国", PHONE)
    resident = await site.resident("张阿姨")

    stopping = asyncio.create_task(site.stop())
    connecting = member.page.locator("#conn-banner")
    await expect(connecting).to_have_text("连接中…", timeout=NOTICED_MS)
    await expect(resident.page.locator("#banner")).to_have_text("连接中…", timeout=NOTICED_MS)
    await stopping
    await shot(member.page, "console-reconnecting")
    await resident.say(LEAK)
    waiting = resident.message(LEAK).locator(".msg-resending")
    await expect(waiting).to_have_text("网络不好，正在重发", timeout=AT_ONCE_MS)
    await shot(resident.page, "webchat-resending")
    # While the console is away, another worker on the same database takes a neighbour's
    # request; then the service starts again on its port.
    other = await site.other_worker()
    await request_reaches(other, await other.resident("刘奶奶"), LIGHT)
    await other.client.close()
    await site.start_again()

    await expect(connecting).to_be_hidden()
    await expect(member.ok_note).to_have_text(
        re.compile(r"已重新连上，断线时的\d+条新动态已补上。")
    )
    await expect(member.card(LIGHT)).to_contain_text("刘奶奶")
    await shot(member.page, "console-reconnected")
    await expect(waiting).to_have_count(0)
    await expect(resident.message("已请3号楼网格员王建国")).to_be_visible()
    await expect(member.card("厨房水管漏水了")).to_contain_text("张阿姨")
