"""What a resident finds in the webchat besides the chat: the privacy notice, and numbers to
call with one tap."""

from __future__ import annotations

from tests.browser.pages import (
    BROWSER,
    PHONE,
    RESIDENT_TEXT_PX,
    Page,
    Resident,
    Site,
    expect,
    shot,
    text_smaller_than,
    wider_than_screen,
)

pytestmark = BROWSER

GAS = "3号楼有户人家煤气味很大 老人晕过去了"


async def reads_the_privacy_notice(page: Page) -> None:
    """The notice, on one phone screen's width, in a resident's type size."""
    await expect(page.get_by_role("heading", name="隐私说明")).to_be_visible()
    for part in ("我们记下什么", "留多久", "谁能看到", "想看或想删"):
        await expect(page.get_by_role("heading", name=part)).to_be_visible()
    await expect(page.locator("#privacy-retention")).to_contain_text("天")
    assert await wider_than_screen(page) == []
    assert await text_smaller_than(page, RESIDENT_TEXT_PX) == []


async def test_the_privacy_notice_is_a_tap_away_before_and_after_giving_a_name(
    site: Site,
) -> None:
    resident = Resident(await site.page(PHONE))
    await resident.page.goto("/webchat/")

    await resident.page.get_by_role("link", name="我们记下什么、留多久、谁能看？").click()
    await reads_the_privacy_notice(resident.page)
    await shot(resident.page, "privacy")
    await resident.page.get_by_role("link", name="返回聊天").click()
    await resident.give_name("张阿姨")
    await resident.page.get_by_role("link", name="隐私说明：我们记下什么、留多久、谁能看").click()
    await reads_the_privacy_notice(resident.page)


async def test_the_emergency_numbers_in_the_answer_to_an_urgent_request_call_with_one_tap(
    site: Site,
) -> None:
    resident = await site.resident("李大爷")

    # Gas and someone hurt: both numbers in one answer.
    await resident.say(GAS)

    answer = resident.message("如有生命危险请立即拨打120")
    for number in ("120", "119"):
        call = answer.locator("a.tel-link", has_text=number)
        await expect(call).to_have_attribute("href", f"tel:{number}")
        await expect(call).to_have_accessible_name(f"拨打{number}")
    await shot(resident.page, "webchat-urgent")
