"""Every page on a 360 px phone and a 1280 px laptop: nothing scrolls sideways, a resident's
words are big enough to read, and a screenshot of each page for people to look at
(var/screenshots/)."""

from __future__ import annotations

import pytest

from tests.browser.pages import (
    BROWSER,
    LAPTOP,
    LEAK,
    PHONE,
    REPLY,
    RESIDENT_TEXT_PX,
    SCREENSHOTS,
    Locator,
    Page,
    Site,
    expect,
    shot,
    text_smaller_than,
    wider_than_screen,
)

pytestmark = BROWSER


async def fits(page: Page, shown: Locator, name: str) -> None:
    """Once `shown` is on the screen, the page scrolls only up and down; then its screenshot."""
    await expect(shown).to_be_visible()
    assert await wider_than_screen(page) == [], name
    await shot(page, name)


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
async def test_no_page_scrolls_sideways(site: Site, width: int) -> None:
    newcomer = await site.page(width)
    await newcomer.goto("/webchat/")
    await fits(newcomer, newcomer.get_by_label("您的称呼"), "webchat-name")

    resident = await site.answered_resident(width)
    await fits(resident.page, resident.message(REPLY), "webchat-chat")
    await resident.back_to_list()
    await fits(resident.page, resident.page.locator("#chat-list"), "webchat-list")

    login = await site.page(width)
    await login.goto("/console/")
    await fits(login, login.get_by_label("密码"), "console-login")

    member = await site.console("王建国", width)
    await fits(member.page, member.card("厨房水管漏水了"), "console-list")
    await member.open_ticket(LEAK)
    reply = member.page.locator("#ticket-messages .msg", has_text=REPLY)
    await fits(member.page, reply, "console-ticket")

    operator = await site.console("周晓燕", width, "/ops/review")
    await fits(operator.page, operator.page.locator("#review-page"), "ops-review")
    await operator.page.get_by_role("link", name="模型", exact=True).click()
    await fits(operator.page, operator.page.locator("#models-page"), "ops-models")


async def test_a_residents_messages_and_input_are_large_on_a_phone(site: Site) -> None:
    resident = await site.answered_resident(PHONE)

    for part in ("#messages .bubble", "#send-form"):
        assert await text_smaller_than(resident.page, RESIDENT_TEXT_PX, part) == [], part
    # The box has the phone's width to itself, not what 语音, 照片 and 发送 leave of it.
    box = await resident.page.locator("#text-input").bounding_box()
    assert box is not None and box["width"] >= 0.8 * PHONE


async def test_everything_a_resident_reads_is_at_least_18px_on_a_phone(site: Site) -> None:
    resident = await site.answered_resident(PHONE)
    chat = await text_smaller_than(resident.page, RESIDENT_TEXT_PX)
    await resident.back_to_list()

    assert chat + await text_smaller_than(resident.page, RESIDENT_TEXT_PX) == []


# Whether a tap at the middle of an element reaches it, or something drawn over it.
_REACHABLE = """el => {
  const r = el.getBoundingClientRect();
  return el.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
}"""


async def test_a_done_line_leaves_the_back_button_free_on_a_phone(site: Site) -> None:
    member = await site.console("王建国", PHONE)
    resident = await site.resident("张阿姨")
    await resident.say(LEAK)
    await member.open_ticket(LEAK)

    await member.claim()
    await member.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    await expect(member.ok_note).to_be_visible()

    back = member.page.locator("#back")
    assert await member.page.evaluate("window.scrollY") > 0, "the ticket fits the screen"
    await member.page.screenshot(path=SCREENSHOTS / "console-claimed-scrolled-360.png")
    assert await back.evaluate(_REACHABLE), "the done line covers the back button"
    assert await member.ok_note.evaluate(_REACHABLE), "the top bar covers the done line"
    await back.click()
    await expect(member.page.locator("#view-list")).to_be_visible()
