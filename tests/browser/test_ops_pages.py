"""The operator's review queue: a relabel says what it did and can be taken back."""

from __future__ import annotations

from bot.db.nlu_models import Classification
from bot.typedefs import sessions_key
from tests.browser.pages import BROWSER, PHONE, Site, expect, shot

pytestmark = BROWSER

# A meal the model heard in a health worry.
DIZZY = "阿姨头晕想找人量血压"


async def test_a_relabel_shows_what_it_did_and_undo_puts_the_message_back(site: Site) -> None:
    async with site.service.client.app[sessions_key]() as session, session.begin():
        session.add(Classification(text=DIZZY, intent="canteen", confidence=0.4, model="m"))
    operator = await site.console("周晓燕", PHONE, "/ops/review")
    item = operator.page.locator(".review-item", has_text=DIZZY)

    await item.get_by_role("button", name="医疗", exact=True).click()

    toast = operator.page.locator("#review-toast")
    await expect(toast).to_have_text("已改为 医疗 · 撤销")
    await expect(item).to_have_count(0)
    await expect(operator.page.locator("#review-empty")).to_be_visible()
    await shot(operator.page, "ops-review-undo")
    await toast.get_by_role("button", name="撤销刚才的决定").click()
    await expect(toast).to_be_hidden()
    await expect(operator.page.locator("#ok-banner")).to_contain_text("回到了待复核里")
    await expect(item).to_be_visible()
    await expect(item.get_by_role("button", name="采纳：助餐")).to_be_focused()
