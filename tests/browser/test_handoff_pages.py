"""A request from the webchat to a member's console and back, as both of them see it."""

from __future__ import annotations

import pytest

from tests.browser.pages import (
    BROWSER,
    FALL,
    LAPTOP,
    LEAK,
    NOTE,
    PHONE,
    REPLY,
    RESIDENT_TEXT_PX,
    TAP_PX,
    Site,
    expect,
    shot,
    text_smaller_than,
)

pytestmark = BROWSER


@pytest.mark.parametrize("console_width", [LAPTOP, PHONE])
async def test_a_request_written_on_a_phone_is_claimed_and_answered_in_the_console(
    site: Site, console_width: int
) -> None:
    member = await site.console("王建国", console_width)
    await expect(member.page.locator("#list-empty")).to_have_text("暂时没有待处理的事，辛苦了！")
    resident = await site.resident("张阿姨")

    await resident.say(LEAK)

    await expect(resident.message("已请3号楼网格员王建国")).to_be_visible()
    card = member.card("厨房水管漏水了")
    await expect(card).to_be_visible()
    await expect(card).to_contain_text("张阿姨")
    await expect(card).to_contain_text("新")
    await member.open_ticket(LEAK)
    await member.claim()
    await expect(member.page.locator("#ticket-info")).to_contain_text("王建国（我）")
    await member.reply(REPLY)

    answer = resident.message(REPLY)
    await expect(answer).to_be_visible()
    await expect(answer).to_contain_text("王建国")
    await expect(answer).to_contain_text("社区工作人员")


async def test_an_urgent_request_puts_a_red_banner_on_the_members_phone(site: Site) -> None:
    member = await site.console("王建国", PHONE)
    resident = await site.resident("李大爷")

    await resident.say(FALL)

    banner = member.urgent_banner
    await expect(banner).to_be_visible()
    await expect(banner).to_contain_text("紧急求助")
    await expect(banner).to_contain_text("老人摔倒了起不来")
    await expect(member.card("老人摔倒了起不来")).to_contain_text("紧急")
    await shot(member.page, "console-urgent")
    await banner.get_by_role("link", name="马上查看").click()
    await expect(member.page.locator("#ticket-info")).to_contain_text(FALL)
    await expect(member.page.get_by_role("button", name="我去！认领这个紧急求助")).to_be_visible()


async def test_the_resident_hears_of_the_claim_and_the_note_and_rates_it_with_one_tap(
    site: Site,
) -> None:
    member = await site.console("王建国")
    resident = await site.resident("张阿姨")
    await resident.say(LEAK)
    await member.open_ticket(LEAK)

    await member.claim()
    await expect(resident.message("王建国已经接单")).to_be_visible()
    await member.reply(REPLY)
    await member.resolve(NOTE)

    survey = resident.message(NOTE)
    await expect(survey).to_contain_text("王建国已经把这件事办好了")
    await expect(survey).to_contain_text("这次办得怎么样")
    choices = resident.rating_choices
    await expect(choices.get_by_role("button")).to_have_text(["满意", "一般", "不满意"])
    for button in await choices.get_by_role("button").all():
        box = await button.bounding_box()
        assert box and box["height"] >= TAP_PX, await button.text_content()
    assert await text_smaller_than(resident.page, RESIDENT_TEXT_PX, "#rating-choices") == []
    await shot(resident.page, "webchat-rating")
    await choices.locator("#rate-satisfied").click()

    await expect(choices).to_have_count(0)
    await expect(resident.message("谢谢您告诉我们")).to_be_visible()
    await expect(member.info("居民评价")).to_contain_text("满意")
    await shot(member.page, "console-rated")
    overview = await site.overview()
    await expect(overview.figure("居民满意")).to_contain_text("100%")
    await expect(overview.figure("居民满意")).to_contain_text("1位居民评价：满意1")
