"""The console's tools for a full list: search by a word of the request, and joining two
reports of the same thing by picking one from a list."""

from __future__ import annotations

from tests.browser.pages import BROWSER, LEAK, PHONE, Site, expect, shot

pytestmark = BROWSER

LIGHT = "3号楼楼道灯坏了，晚上看不见"
# 张阿姨's leak, as the neighbour below sees it.
DRIP = "3号楼2单元 楼上漏水，我家厨房天花板在滴水"


async def test_a_word_of_the_request_finds_its_ticket_and_clearing_brings_the_rest_back(
    site: Site,
) -> None:
    await site.requests(("张阿姨", LEAK), ("刘奶奶", LIGHT))
    member = await site.console("王建国", PHONE)
    await expect(member.page.locator(".ticket-card")).to_have_count(2)

    await member.search("漏水")

    await expect(member.page.locator(".ticket-card")).to_have_count(1)
    await expect(member.card("厨房水管漏水了")).to_be_visible()
    await expect(member.page.locator("#filter-count")).to_have_text("1")
    await shot(member.page, "console-search")
    await member.page.get_by_role("button", name="清除筛选").click()
    await expect(member.page.locator(".ticket-card")).to_have_count(2)
    await member.search("电梯")
    await expect(member.page.locator("#list-empty")).to_have_text("没有找到符合条件的工单。")


async def test_a_neighbours_report_joins_the_first_one_picked_from_a_list(site: Site) -> None:
    await site.requests(("张阿姨", LEAK), ("李大爷", DRIP))
    member = await site.console("王建国", PHONE)
    await member.open_ticket(DRIP)

    choices = await member.merge_choices()

    await expect(choices).to_have_count(1)
    await expect(choices).to_contain_text("厨房水管漏水了")
    await expect(choices).to_contain_text("张阿姨")
    # Offered to him and not claimed yet: said as the ticket list says it.
    await expect(choices).to_contain_text("分派给：我（还没认领）")
    await shot(member.page, "console-merge")
    await choices.filter(has_text="厨房水管漏水了").click()
    await member.page.get_by_role("button", name="确认是同一件事").click()
    same = member.info("同一件事")
    await expect(same).to_contain_text("邻居先报的工单")
    await same.get_by_role("link").click()
    await expect(member.info("一起报的邻居")).to_contain_text("李大爷：" + DRIP)
