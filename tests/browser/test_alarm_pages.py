"""What wakes a member for an urgent request, on a phone: a sound that rings until it is
stopped or someone claims the request, and a system notification shown through the console's
service worker; and 可能紧急, which asks the grid's members first."""

from __future__ import annotations

import re

from tests.browser.pages import BROWSER, FALL, LAPTOP, PHONE, Site, expect, shot
from tests.helpers import request_reaches

pytestmark = BROWSER

# One ring of the alarm: six beeps (bot/web/static/console-alerts.js).
RING = 6
# 可能紧急: readings the model was unsure of.
FALL_AT_HOME = "我爸在家摔倒了起不来，3号楼2单元501"
SMELL = "3号楼1单元楼道里好像有股煤气味"


async def test_an_urgent_request_rings_and_notifies_until_the_member_stops_it_or_it_is_claimed(
    site: Site,
) -> None:
    member = await site.console("王建国", PHONE)
    await shot(member.page, "console-alarms-off")
    await member.turn_on_alarms()
    await expect(member.page.locator("#alerts-box")).to_be_hidden()
    assert await member.worker_scope() == str(site.service.client.make_url("/console/"))
    resident = await site.resident("李大爷")
    quiet = await member.tones_played()

    await resident.say(FALL)

    banner = member.urgent_banner
    await expect(banner).to_contain_text("紧急求助！3号楼 · 李大爷：" + FALL)
    await expect(banner).to_have_attribute("data-ringing", "1")
    assert await member.tones_played() >= quiet + RING
    await member.notification_shown("紧急求助！ 3号楼 · 李大爷：" + FALL)
    await expect(member.card(FALL)).to_contain_text("紧急")
    await shot(member.page, "console-urgent-ringing")
    await banner.get_by_role("button", name="停止响铃").click()
    await expect(banner).to_have_attribute("data-ringing", "0")
    await expect(banner.get_by_role("button", name="停止响铃")).to_be_hidden()
    await expect(banner.get_by_role("link", name="马上查看")).to_be_visible()

    # A neighbour's fall rings again, until a colleague claims it.
    token, second = await request_reaches(
        site.service, await site.service.resident("王奶奶"), FALL, "李秀英"
    )
    await expect(banner).to_contain_text("王奶奶")
    await expect(banner).to_have_attribute("data-ringing", "1")
    neighbour = "紧急求助！ 3号楼 · 王奶奶：" + FALL
    await member.notification_shown(neighbour)
    await site.handle(token, second["id"], claim={})
    await expect(banner).to_have_attribute("data-ringing", "0")
    await member.notification_shown(neighbour, shown=False)

    # 李大爷 still waits for anyone: the banner turns back to him, without ringing again.
    await expect(banner).to_contain_text("紧急求助，还没人认领！3号楼 · 李大爷：" + FALL)
    await expect(banner).not_to_contain_text("王奶奶")
    await shot(member.page, "console-urgent-older-still-waiting")
    await banner.get_by_role("link", name="马上查看").click()
    await expect(banner).to_be_hidden()
    await member.claim()
    await expect(banner).to_be_hidden()


async def test_a_doubtful_emergency_asks_the_grid_first_who_says_urgent_or_not(
    site: Site,
) -> None:
    member = await site.console("王建国", PHONE)
    secretary = await site.console("陈红梅", LAPTOP)

    await site.doubtful_request("王奶奶", FALL_AT_HOME)

    banner = member.urgent_banner
    await expect(banner).to_contain_text("可能紧急，请看一眼！3号楼 · 王奶奶")
    await expect(banner).to_have_class(re.compile("is-unsure"))
    await expect(banner).to_have_attribute("data-ringing", "1")
    # The secretary lists it and is not woken for it.
    await expect(secretary.card("摔倒了起不来")).to_contain_text("可能紧急")
    # Not also 紧急: that is what the grid is asked.
    await expect(secretary.card("摔倒了起不来").locator(".cat-urgent")).to_have_count(0)
    await expect(secretary.urgent_banner).to_be_hidden()
    await banner.get_by_role("link", name="马上查看").click()
    unsure = member.page.locator("#unsure-box")
    await expect(unsure).to_contain_text("是紧急情况吗？")
    await shot(member.page, "console-unsure")
    await unsure.get_by_role("button", name="是紧急").click()

    await expect(member.ok_note).to_contain_text("已确认是紧急情况")
    await expect(unsure).to_be_hidden()
    await expect(secretary.urgent_banner).to_contain_text("紧急求助，还没人认领！3号楼 · 王奶奶")
    await expect(secretary.urgent_banner).to_have_attribute("data-ringing", "1")
    await expect(secretary.card("摔倒了起不来")).not_to_contain_text("可能紧急")
    await expect(secretary.card("摔倒了起不来").locator(".cat-urgent")).to_have_text("紧急")
    await shot(secretary.page, "console-urgent-confirmed")

    await site.doubtful_request("赵大爷", SMELL)
    await expect(banner).to_contain_text("可能紧急，请看一眼！3号楼 · 赵大爷")
    await banner.get_by_role("link", name="马上查看").click()
    await unsure.get_by_role("button", name="不紧急").click()

    await expect(member.ok_note).to_have_text("好的，按普通求助办，已派给一位同事。")
    await expect(unsure).to_be_hidden()
    await expect(member.page.locator("#ticket-info .urgent-strip")).to_have_count(0)
    smell = secretary.card("煤气味")
    await expect(smell).to_be_visible()
    await expect(smell).not_to_contain_text("紧急")
    await expect(secretary.urgent_banner).not_to_contain_text("赵大爷")
