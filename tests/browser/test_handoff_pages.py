"""A request from the webchat to a member's console and back, as both of them see it."""

from __future__ import annotations

import pytest

from tests.browser.pages import BROWSER, LAPTOP, LEAK, PHONE, REPLY, Site, expect, shot

pytestmark = BROWSER

FALL = "3号楼有老人摔倒了起不来"


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
